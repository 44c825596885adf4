// gna: the command line of the generalized neighborhood attention library.
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <new>
#include <string>

#include "cli.hpp"
#include "gna/error.hpp"
#include "gna/version.hpp"

namespace {

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(int, char**);
};

const Subcommand kSubcommands[] = {
    {"mask", "print the keys each query sees", gna::cli::run_mask},
    {"check", "compare every backend with the reference on random problems", gna::cli::run_check},
    {"bench", "time one problem", gna::cli::run_bench},
    {"sim", "simulate tile work and the attainable speedup; choose tiles", gna::cli::run_sim},
};

void usage(std::FILE* out) {
  std::fprintf(out, "usage: gna <command> [options]   (gna <command> --help for details)\n"
                   "       gna --version\n\n");
  for (const Subcommand& s : kSubcommands) std::fprintf(out, "  %-7s %s\n", s.name, s.summary);
}

// Library errors name the library's argument; say which option that is.
std::string option_hint(const std::string& argument) {
  static const char* map[][2] = {{"kernel_size", "--window"}, {"stride", "--stride"},
                                 {"dilation", "--dilation"}, {"heads", "--heads"},
                                 {"kv_heads", "--kv-heads"},  {"head_dim_v", "--dim-v"},
                                 {"head_dim", "--dim"},       {"batch", "--batch"},
                                 {"additional_keys", "--extra-kv"}, {"extent", "--shape"},
                                 {"backend", "--backend"}};
  for (const auto& m : map) {
    if (argument.rfind(m[0], 0) == 0) return std::string(" (option ") + m[1] + ")";
  }
  return "";
}

void fail_line(const char* command, const std::string& message) {
  std::fprintf(stderr, "gna %s: error: %s\n", command, gna::cli::one_line(message).c_str());
}

std::string command_line(int argc, char** argv) {
  std::string s = "gna";
  for (int i = 1; i < argc; ++i) s += std::string(" ") + argv[i];
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  // A missing command is a bad argument like any other: one line, status 2.
  if (argc < 2) {
    std::fprintf(stderr, "gna: error: no command given (try gna --help)\n");
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("gna %s\n", gna::version());
    return 0;
  }
  for (const Subcommand& s : kSubcommands) {
    if (name != s.name) continue;
    // Every failure is status 2 and one line: bad input, a backend that
    // cannot run the problem, memory or a device that gives out.
    try {
      return s.run(argc - 2, argv + 2);
    } catch (const gna::cli::UsageError& e) {
      fail_line(s.name, e.what());
    } catch (const gna::Error& e) {
      const bool bad_input = e.kind() != gna::ErrorKind::runtime;
      fail_line(s.name, std::string(e.what()) + (bad_input ? option_hint(e.argument()) : ""));
    } catch (const std::bad_alloc&) {
      fail_line(s.name, "out of memory: this machine cannot hold what the options ask for (" +
                            command_line(argc, argv) + ")");
    } catch (const std::exception& e) {
      fail_line(s.name, e.what());
    }
    return 2;
  }
  std::fprintf(stderr, "gna: error: unknown command '%s' (try gna --help)\n",
               gna::cli::one_line(name).c_str());
  return 2;
}
