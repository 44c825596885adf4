// One kernel instantiation per file, so that a build spreads over cores.
#include "cuda/sm90/backward_kernel_launch.cuh"

namespace gna::sm90 {
template void launch_backward_config<BackwardConfig<__half, 128>>(const BackwardLaunch&);
}  // namespace gna::sm90
