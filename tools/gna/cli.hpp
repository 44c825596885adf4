// Option parsing and output helpers shared by the `gna` subcommands.
// Every bad argument becomes a UsageError, which main turns into one line on
// stderr and exit status 2.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <stdexcept>
#include <type_traits>
#include <string>
#include <vector>

namespace gna::cli {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Option {
  std::string name;     // without the leading "--"
  std::string metavar;  // empty for a flag that takes no value
  std::string help;
};

class Command {
 public:
  Command(std::string name, std::string summary, std::vector<Option> options);

  // Parses argv after the subcommand; returns false when --help was printed.
  bool parse(int argc, char** argv);

  bool flag(const std::string& name) const;
  bool has(const std::string& name) const;
  std::string text(const std::string& name, const std::string& fallback) const;
  int64_t integer(const std::string& name, int64_t fallback) const;
  void print_help(std::ostream& os) const;

 private:
  const Option* find(const std::string& name) const;
  std::string name_, summary_;
  std::vector<Option> options_;
  std::map<std::string, std::string> values_;
};

// "13x9" or "13,9" -> {13, 9}; names the option in errors.
std::vector<int64_t> parse_ints(const std::string& option, const std::string& text);
// "1x0" -> {true, false}.
std::vector<bool> parse_bools(const std::string& option, const std::string& text);

// Minimal JSON output.
std::string json_string(const std::string& s);
std::string json_number(double v);
// Integers print exactly, whatever their size.
template <typename T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
std::string json_number(T v) {
  return std::to_string(v);
}
template <typename T>
std::string json_list(const std::vector<T>& items) {
  std::string s = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) s += ", ";
    if constexpr (std::is_same_v<T, std::string>) s += items[i];
    else s += json_number(items[i]);
  }
  return s + "]";
}

// `s` with newlines and other control characters escaped (\n, \x01), so an
// error message that quotes a value stays one line.
std::string one_line(const std::string& s);

// Subcommands; each returns the process exit status.
int run_mask(int argc, char** argv);
int run_check(int argc, char** argv);
int run_bench(int argc, char** argv);
int run_sim(int argc, char** argv);

}  // namespace gna::cli
