// The `gna` command line, run as a process: exact output of `gna mask`,
// status 2 and a one-line message for every bad argument, `gna check`, and
// --help of every subcommand.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "cli_output.hpp"
#include "gna/version.hpp"

#ifndef GNA_CLI_PATH
#error "GNA_CLI_PATH must name the gna executable"
#endif

namespace {

struct Outcome {
  int status = -1;  // exit status; -1 when killed by a signal
  std::string out, err;
};

using gna::test::slurp;
using gna::test::without_sanitizer_notes;

// Runs `gna <args>` through the shell, capturing stdout and stderr apart.
Outcome gna(const std::string& args) {
  // ctest runs tests in parallel processes: the pid keeps their files apart.
  static int counter = 0;
  const std::string base = ::testing::TempDir() + "gna_cli_test_" + std::to_string(getpid()) +
                           "_" + std::to_string(++counter);
  const std::string cmd = std::string("'") + GNA_CLI_PATH + "' " + args + " >'" + base +
                          ".out' 2>'" + base + ".err' </dev/null";
  const int raw = std::system(cmd.c_str());
  Outcome r;
  if (raw != -1 && WIFEXITED(raw)) r.status = WEXITSTATUS(raw);
  r.out = slurp(base + ".out");
  r.err = without_sanitizer_notes(slurp(base + ".err"));
  return r;
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

const char* const kMaskFlags =
    "--shape 13x9 --window 5x3 --stride 2x1 --dilation 2x1 --causal 1x0";

// Axis 0 (n 13, k 5, s 2, d 2, causal): query 7 is position 3 of group 1
// (tokens 1,3,5,7,9,11; m = 6). Its run {2, 3} has leader 3, so it sees
// positions max(3 - 5 + 1, 0) .. 3 = 0..3: tokens 1, 3, 5, 7.
// Axis 1 (n 9, k 3, s 1): query 4 sees 3..5. Row-major product: 12 keys.
const char* const kQuery74Keys =
    "[[1, 3], [1, 4], [1, 5], [3, 3], [3, 4], [3, 5], "
    "[5, 3], [5, 4], [5, 5], [7, 3], [7, 4], [7, 5]]";

TEST(Cli, MaskPrintsTheHandComputedNeighborhood) {
  const Outcome r = gna(std::string("mask ") + kMaskFlags + " --query 7,4 --json");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, std::string(kQuery74Keys) + "\n");
  EXPECT_EQ(r.err, "");
}

TEST(Cli, MaskOfEveryQueryContainsTheSameNeighborhood) {
  const Outcome r = gna(std::string("mask ") + kMaskFlags + " --json");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(std::string("{\"query\": [7, 4], \"keys\": ") + kQuery74Keys + "}"),
            std::string::npos);
  // 13 x 9 queries, each listed once.
  size_t count = 0;
  for (size_t at = r.out.find("\"query\""); at != std::string::npos;
       at = r.out.find("\"query\"", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 13u * 9u);
}

TEST(Cli, MaskTextOutput) {
  const Outcome r = gna(std::string("mask ") + kMaskFlags + " --query 7,4");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "query (7,4) sees 12 keys: (1,3) (1,4) (1,5) (3,3) (3,4) (3,5) (5,3) (5,4) (5,5) "
            "(7,3) (7,4) (7,5)\n");
}

struct BadArguments {
  const char* args;
  const char* says;  // what the one line must mention
};

// Test names show the arguments ("mask_shape_13x9_window_0").
void PrintTo(const BadArguments& b, std::ostream* os) { *os << '"' << b.args << '"'; }

std::string case_name(const ::testing::TestParamInfo<BadArguments>& info) {
  std::string name = std::to_string(info.index) + "_";
  for (const char* c = info.param.args; *c; ++c) name += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
  return name;
}

class CliBadArguments : public ::testing::TestWithParam<BadArguments> {};

TEST_P(CliBadArguments, ExitWithStatus2AndOneLine) {
  const Outcome r = gna(GetParam().args);
  EXPECT_EQ(r.status, 2) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.back(), '\n');
  EXPECT_NE(r.err.find(GetParam().says), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

INSTANTIATE_TEST_SUITE_P(
    Cli, CliBadArguments,
    ::testing::Values(BadArguments{"mask --shape 13x9 --window 5x3 --bogus", "--bogus"},
                      BadArguments{"mask --shape 13x9 --window 0", "kernel_size[0]"},
                      BadArguments{"mask --shape 13x9 --window 20x3", "kernel_size[0] = 20"},
                      BadArguments{"mask --window 5x3", "--shape"},
                      BadArguments{"mask --shape 13xx9 --window 5x3", "13xx9"},
                      BadArguments{"mask --shape 13x9 --window 5,a", "5,a"},
                      BadArguments{"mask --shape 13x9 --window 5x3 --query 13,4", "--query"},
                      BadArguments{"mask --shape 13x9 --window 5x3 --query 7", "--query"},
                      BadArguments{"mask --shape 13x9 --window 5x3 --stride 6x1", "stride[0]"},
                      BadArguments{"mask --shape 13x9 --window 5x3 --causal 2", "--causal"},
                      BadArguments{"mask --shape 13x9 --window 5x3 --query", "--query"},
                      BadArguments{"frobnicate", "frobnicate"},
                      BadArguments{"", "no command"},
                      BadArguments{"check --cases 0", "--cases"},
                      BadArguments{"check --backend turbo", "turbo"},
                      BadArguments{"bench --dtype f8", "--dtype"},
                      BadArguments{"bench --heads 3 --kv-heads 2", "kv_heads"},
                      // Issue 13's reproducers: overflowing sizes are named
                      // errors, not SIGFPE / SIGSEGV / garbage with status 0.
                      BadArguments{"sim --shape 8x8 --window 1 --q-tile 1x1 "
                                   "--kv-tile 4294967296x4294967296", "kv_tile"},
                      BadArguments{"bench --device cpu --shape 1 --window 1 --batch "
                                   "4611686018427387904 --heads 1 --dim 1 --iters 1 --warmup 0",
                                   "--batch"},
                      BadArguments{"mask --shape 3037000500x3037000500 --window 1", "2^62"},
                      BadArguments{"sim --shape 3037000500x3037000500 --window 1", "--shape"},
                      BadArguments{"sim --heads 4611686018427387904 --shape 64 --window 3",
                                   "2^62"},
                      // A value holding a newline still makes one line.
                      BadArguments{"sim --shape '5\n' --window 1", "'5\\n'"},
                      BadArguments{"mask --shape 1 --window '1\n2'", "1\\n2"},
                      // Out of memory (2^50 bytes: more than any address
                      // space) is status 2 too, saying what was asked.
                      BadArguments{"bench --device cpu --shape 1048576 --window 1 --batch 1024 "
                                   "--heads 1024 --dim 256 --iters 1 --warmup 0",
                                   "1125899906842624 bytes"},
                      // Listing every query of a huge grid is refused up front.
                      BadArguments{"mask --shape 100000x100 --window 3", "--query"},
                      // The simulator's walks and the stride search are bounded.
                      BadArguments{"sim --shape 1099511627776 --window 3", "at most"},
                      BadArguments{"sim --shape 2147483648 --window 3 --q-tile 1 --kv-tile 1",
                                   "at most 16777216 query tiles"},
                      BadArguments{"sim --shape 2147483648 --window 3 --q-tile 1 --kv-tile 1 "
                                   "--find-stride", "stride search"}),
    case_name);

// Integers past 1e15 print exactly: 2^31 tokens give 2^62 dense pairs.
TEST(Cli, JsonIntegersAreExact) {
  const Outcome r = gna("sim --shape 2147483648 --window 3 --q-tile 128 --kv-tile 128 --json");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"dense_work\": 4611686018427387904,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"q_tiles\": 16777216,"), std::string::npos) << r.out;
}

// Issue 13's unbounded case: the stride search used to walk O(k m^2 / tiles).
TEST(Cli, FindStrideAnswersQuickly) {
  const auto start = std::chrono::steady_clock::now();
  const Outcome r = gna("sim --shape 66444 --window 34310 --stride 6201 --find-stride --json");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"strides\": ["), std::string::npos) << r.out;
  EXPECT_LT(seconds, 10.0);
}

TEST(Cli, CheckPassesOnRandomCases) {
  const Outcome r = gna("check --cases 5");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("all checks passed"), std::string::npos) << r.out;
}

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* command : {"mask", "check", "bench", "sim"}) {
    SCOPED_TRACE(command);
    const Outcome r = gna(std::string(command) + " --help");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find(std::string("usage: gna ") + command), std::string::npos) << r.out;
    EXPECT_EQ(r.err, "");
  }
  const Outcome top = gna("--help");
  EXPECT_EQ(top.status, 0);
  for (const char* command : {"mask", "check", "bench", "sim"}) {
    EXPECT_NE(top.out.find(command), std::string::npos) << top.out;
  }
}

// The CLI, the library and the VERSION file CMake read agree.
TEST(Cli, VersionIsTheLibrarysAndTheSourceTrees) {
  const Outcome r = gna("--version");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, std::string("gna ") + gna::version() + "\n");
  EXPECT_STREQ(gna::version(), GNA_SOURCE_VERSION);
}

}  // namespace
