#include "cli.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

namespace gna::cli {

Command::Command(std::string name, std::string summary, std::vector<Option> options)
    : name_(std::move(name)), summary_(std::move(summary)), options_(std::move(options)) {
  options_.push_back({"help", "", "print this help and exit"});
}

const Option* Command::find(const std::string& name) const {
  for (const Option& o : options_) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

bool Command::parse(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      throw UsageError("unexpected argument '" + arg + "' (options start with --; see --help)");
    }
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Option* opt = find(name);
    if (!opt) throw UsageError("unknown option --" + name + " (see --help)");
    if (name == "help") {
      print_help(std::cout);
      return false;
    }
    if (opt->metavar.empty()) {
      if (inline_value) throw UsageError("option --" + name + " takes no value");
      values_[name] = "1";
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value " + opt->metavar);
      value = argv[++i];
    }
    values_[name] = value;
  }
  return true;
}

bool Command::flag(const std::string& name) const { return values_.count(name) > 0; }
bool Command::has(const std::string& name) const { return values_.count(name) > 0; }

std::string Command::text(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

int64_t Command::integer(const std::string& name, int64_t fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::vector<int64_t> v = parse_ints(name, it->second);
  if (v.size() != 1) throw UsageError("--" + name + " takes one integer, got '" + it->second + "'");
  return v[0];
}

void Command::print_help(std::ostream& os) const {
  os << "usage: gna " << name_ << " [options]\n\n" << summary_ << "\n\noptions:\n";
  for (const Option& o : options_) {
    std::string left = "  --" + o.name + (o.metavar.empty() ? "" : " " + o.metavar);
    if (left.size() < 28) left.resize(28, ' ');
    else left += "\n" + std::string(28, ' ');
    os << left << o.help << "\n";
  }
}

std::vector<int64_t> parse_ints(const std::string& option, const std::string& text) {
  std::vector<int64_t> out;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) {
      throw UsageError("--" + option + ": '" + text + "' is not a list of integers like 13x9");
    }
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(cur, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != cur.size()) {
      throw UsageError("--" + option + ": '" + text + "' is not a list of integers like 13x9");
    }
    out.push_back(v);
    cur.clear();
  };
  for (char c : text) {
    if (c == 'x' || c == ',') flush();
    else cur += c;
  }
  flush();
  return out;
}

std::vector<bool> parse_bools(const std::string& option, const std::string& text) {
  std::vector<bool> out;
  for (int64_t v : parse_ints(option, text)) {
    if (v != 0 && v != 1) {
      throw UsageError("--" + option + ": '" + text + "' must be 0/1 per axis, like 1x0");
    }
    out.push_back(v == 1);
  }
  return out;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  // Integral values print as integers while doubles hold them exactly;
  // anything else in the shortest form that reads back to the same double.
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
    return std::to_string(static_cast<long long>(v));
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string one_line(const std::string& s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace gna::cli
