// One kernel instantiation per file, so that a build spreads over cores.
#include "cuda/sm90/forward_launch.cuh"

namespace gna::sm90 {
template void launch_config<ForwardConfig<__half, 192, 128>>(const Launch&);
}  // namespace gna::sm90
