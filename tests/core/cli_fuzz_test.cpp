// Fuzzes the `gna` command line with random malformed flags from a fixed
// seed: every run must end by itself (no hang), exit with status 0 or 2
// (never a signal: no SIGFPE, SIGSEGV, abort), and a status 2 must come with
// exactly one line on stderr. Values mix small valid sizes with overflowing
// ones (2^62, 2^63, 10^20), malformed lists, newlines and empty strings;
// sizes stay small or invalid so that no run does real work for long.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef GNA_CLI_PATH
#error "GNA_CLI_PATH must name the gna executable"
#endif

extern char** environ;

#include "cli_output.hpp"

namespace {

constexpr int kRuns = 400;
constexpr double kTimeoutSeconds = 30.0;  // per run; a sanitizer build is slower

struct Outcome {
  bool exited = false;  // false: killed by a signal (or by the timeout)
  int status = -1;
  int signal = 0;
  bool timed_out = false;
  std::string err;
};

using gna::test::slurp;
using gna::test::without_sanitizer_notes;

// Runs gna with `args` (no shell: values may hold anything), stdout
// discarded, stderr kept; kills it past the timeout.
Outcome run(const std::vector<std::string>& args, const std::string& err_path) {
  std::vector<char*> argv{const_cast<char*>(GNA_CLI_PATH)};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&files, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&files, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = 0;
  Outcome r;
  const int spawned = posix_spawn(&pid, GNA_CLI_PATH, &files, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  if (spawned != 0) return r;
  const auto start = std::chrono::steady_clock::now();
  int raw = 0;
  while (waitpid(pid, &raw, WNOHANG) == 0) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed > kTimeoutSeconds) {
      kill(pid, SIGKILL);
      waitpid(pid, &raw, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  r.exited = WIFEXITED(raw) && !r.timed_out;
  if (r.exited) r.status = WEXITSTATUS(raw);
  if (WIFSIGNALED(raw)) r.signal = WTERMSIG(raw);
  r.err = without_sanitizer_notes(slurp(err_path));
  return r;
}

template <typename T>
const T& pick(std::mt19937_64& rng, const std::vector<T>& items) {
  return items[std::uniform_int_distribution<size_t>(0, items.size() - 1)(rng)];
}

const std::vector<std::string> kNumbers = {
    "0", "1", "2", "3", "5", "8", "-1", "-9223372036854775808", "4611686018427387904",
    "4611686018427387905", "9223372036854775807", "9223372036854775808", "100000000000000000000",
    "4294967296", "3037000500", "65536", "1x1", "2x3", "3x3x3", "2x2x2x2", "1,0", "x", "",
    "3x", "abc", "5\n", "1.5", "+3", " 4", "1e3", "0x10", "\xff\xfe", "1 2"};
// bench runs what it is given: only tiny or invalid (overflowing) sizes.
const std::vector<std::string> kBenchNumbers = {
    "0", "1", "2", "3", "8", "-1", "4611686018427387904", "9223372036854775808",
    "100000000000000000000", "1x1", "2x3", "3x3x3", "2x2x2x2", "x", "", "3x", "abc", "5\n"};
const std::vector<std::string> kWords = {"f16", "bf16", "f32", "f64", "f8", "static", "dynamic",
                                         "auto", "cpu", "reference", "cuda", "cuda:7", "sm90",
                                         "", "\n", "turbo", "forward", "backward", "both"};
// Flags of every subcommand and some that none has.
const std::vector<std::string> kFlags = {
    "shape", "window", "stride", "dilation", "causal", "query", "heads", "kv-heads", "dim",
    "dim-v", "batch", "extra-kv", "dtype", "backend", "device", "q-tile", "kv-tile",
    "kv-tiling", "top", "find-stride", "json", "iters", "warmup", "cases", "pass", "seed",
    "backward", "deterministic", "sweep", "bogus", "", "-", "help"};

// Flags that make bench or check do real work are held to tiny values.
bool is_size_flag(const std::string& flag) {
  return flag == "iters" || flag == "warmup" || flag == "sweep" || flag == "cases";
}

std::vector<std::string> random_command(std::mt19937_64& rng) {
  static const std::vector<std::string> commands = {"mask", "sim", "sim", "bench", "check",
                                                    "frob", ""};
  const std::string command = pick(rng, commands);
  const std::vector<std::string>& numbers = command == "bench" ? kBenchNumbers : kNumbers;
  std::vector<std::string> args{command};
  if (command == "bench") {
    args.insert(args.end(), {"--device", "cpu", "--iters", "1", "--warmup", "0"});
  }
  if (command == "check") args.insert(args.end(), {"--cases", "1", "--bogus"});  // fails fast
  std::uniform_int_distribution<int> count(0, 7);
  std::uniform_real_distribution<double> chance(0.0, 1.0);
  // A plausible problem most of the time, so that later flags get parsed.
  if (chance(rng) < 0.7) args.insert(args.end(), {"--shape", pick(rng, numbers)});
  if (chance(rng) < 0.7) args.insert(args.end(), {"--window", pick(rng, numbers)});
  for (int i = count(rng); i > 0; --i) {
    const std::string flag = pick(rng, kFlags);
    if (flag == "help" || (command == "bench" && is_size_flag(flag))) continue;
    const double how = chance(rng);
    if (how < 0.1) {
      args.push_back("--" + flag);  // maybe missing its value
    } else if (how < 0.2) {
      args.push_back("--" + flag + "=" + pick(rng, numbers));
    } else if (how < 0.3) {
      args.push_back(pick(rng, numbers));  // a stray positional value
    } else {
      args.push_back("--" + flag);
      args.push_back(chance(rng) < 0.75 ? pick(rng, numbers) : pick(rng, kWords));
    }
  }
  return args;
}

std::string shown(const std::vector<std::string>& args) {
  std::string s = "gna";
  for (const std::string& a : args) {
    s += " '";
    for (char c : a) s += c == '\n' ? std::string("\\n") : std::string(1, c);
    s += "'";
  }
  return s;
}

// GNA_CLI_FUZZ_SEED and GNA_CLI_FUZZ_RUNS change the seed and the run count,
// for a longer hunt by hand; CI uses the fixed defaults.
int64_t from_env(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoll(v, nullptr, 10) : fallback;
}

TEST(CliFuzz, MalformedFlagsExitWith0Or2OnOneLine) {
  std::mt19937_64 rng(static_cast<uint64_t>(from_env("GNA_CLI_FUZZ_SEED", 20261202)));
  const int64_t runs = from_env("GNA_CLI_FUZZ_RUNS", kRuns);
  const std::string err_path =
      ::testing::TempDir() + "gna_cli_fuzz_" + std::to_string(getpid()) + ".err";
  int failures = 0;
  for (int64_t i = 0; i < runs && failures < 10; ++i) {
    const std::vector<std::string> args = random_command(rng);
    const Outcome r = run(args, err_path);
    const bool ok_status = r.exited && (r.status == 0 || r.status == 2);
    const int lines = static_cast<int>(std::count(r.err.begin(), r.err.end(), '\n'));
    const bool ok_err = r.status != 2 || (lines == 1 && r.err.back() == '\n');
    if (!ok_status || !ok_err) {
      ++failures;
      ADD_FAILURE() << shown(args) << "\n  " << (r.timed_out ? "timed out" : "")
                    << (r.signal ? " signal " + std::to_string(r.signal) : "")
                    << " status " << r.status << ", stderr (" << lines << " lines): " << r.err;
    }
  }
  std::remove(err_path.c_str());
}

}  // namespace
