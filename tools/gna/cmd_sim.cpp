// gna sim: placeholder until the simulator lands (issue: simulator).
#include <iostream>

#include "cli.hpp"

namespace gna::cli {

int run_sim(int argc, char** argv) {
  Command cmd("sim", "Simulate tile work (not built yet).", {});
  if (!cmd.parse(argc, argv)) return 0;
  throw UsageError("the simulator is not part of this build yet");
}

}  // namespace gna::cli
