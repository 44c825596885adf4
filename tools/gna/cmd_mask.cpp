// gna mask: which keys does a query see? Prints the neighborhood of one
// query, or of every query, straight from the library's window arithmetic.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "problem_flags.hpp"

namespace gna::cli {
namespace {

std::string coords_text(const std::vector<int64_t>& c) {
  std::string s = "(";
  for (size_t i = 0; i < c.size(); ++i) s += (i ? "," : "") + std::to_string(c[i]);
  return s + ")";
}

void print_query(const std::vector<int64_t>& query, const std::vector<std::vector<int64_t>>& keys) {
  std::cout << "query " << coords_text(query) << " sees " << keys.size() << " keys:";
  for (const auto& k : keys) std::cout << " " << coords_text(k);
  std::cout << "\n";
}

std::string keys_json(const std::vector<std::vector<int64_t>>& keys) {
  std::vector<std::string> items;
  for (const auto& k : keys) items.push_back(json_list(k));
  return json_list(items);
}

// Every listed key is printed: past this many the listing would run for
// minutes and fill the disk, so it is refused up front.
constexpr int64_t kMaxListed = int64_t{1} << 24;

}  // namespace

int run_mask(int argc, char** argv) {
  std::vector<Option> options = window_options();
  options.push_back({"query", "I0[,I1..]", "coordinates of one query (default: every query)"});
  options.push_back({"json", "", "print JSON: a list of key coordinates for --query, "
                                 "else a list of {query, keys}"});
  Command cmd("mask", "Print the coordinates of every key a query sees.", options);
  if (!cmd.parse(argc, argv)) return 0;
  const Problem p = window_problem(cmd, "", "");
  const bool json = cmd.flag("json");

  if (cmd.has("query")) {
    int64_t window = 1;  // the keys one query sees at most
    for (int a = 0; a < p.rank(); ++a) {
      const int64_t k = std::min(kMaxListed + 1, p.params.axis[a].kernel_size);
      window = std::min(kMaxListed + 1, window * k);  // both <= 2^24 + 1: no overflow
    }
    if (window > kMaxListed) {
      throw UsageError("--window covers more than " + std::to_string(kMaxListed) +
                       " keys; gna mask lists at most that many");
    }
    const std::vector<int64_t> query = parse_ints("query", cmd.text("query", ""));
    if (query.size() != static_cast<size_t>(p.rank())) {
      throw UsageError("--query needs " + std::to_string(p.rank()) + " coordinates, one per axis");
    }
    for (int a = 0; a < p.rank(); ++a) {
      if (query[a] < 0 || query[a] >= p.extent[a]) {
        throw UsageError("--query coordinate " + std::to_string(query[a]) + " of axis " +
                         std::to_string(a) + " lies outside [0, " + std::to_string(p.extent[a]) +
                         ")");
      }
    }
    const auto keys = neighborhood(p, query);
    if (json) std::cout << keys_json(keys) << "\n";
    else print_query(query, keys);
    return 0;
  }

  if (p.visible_pairs() > kMaxListed) {
    throw UsageError("the problem has " + std::to_string(p.visible_pairs()) + " query-key pairs; "
                     "gna mask lists at most " + std::to_string(kMaxListed) +
                     " (give --query for one query)");
  }
  std::vector<int64_t> query(p.rank(), 0);
  std::vector<std::string> items;
  for (int64_t t = 0; t < p.tokens(); ++t) {
    int64_t rest = t;
    for (int a = p.rank() - 1; a >= 0; --a) {
      query[a] = rest % p.extent[a];
      rest /= p.extent[a];
    }
    const auto keys = neighborhood(p, query);
    if (json) {
      items.push_back("{\"query\": " + json_list(query) + ", \"keys\": " + keys_json(keys) + "}");
    } else {
      print_query(query, keys);
    }
  }
  if (json) std::cout << json_list(items) << "\n";
  return 0;
}

}  // namespace gna::cli
