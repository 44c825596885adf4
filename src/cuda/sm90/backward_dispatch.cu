// Turns the runtime (element type, head dim) into one of the compiled
// backward kernel instantiations (backward_<type>_d<dim>.cu).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/check.hpp"
#include "cuda/sm90/backward_launch.hpp"
#include "cuda/sm90/config.hpp"

namespace gna::sm90 {

template <class Config>
void launch_backward_config(const BackwardLaunch& launch);

template <class Element>
void launch_backward_head_dim(int head_dim, const BackwardLaunch& launch) {
  switch (head_dim) {
    case 32: return launch_backward_config<BackwardConfig<Element, 32>>(launch);
    case 64: return launch_backward_config<BackwardConfig<Element, 64>>(launch);
    case 128: return launch_backward_config<BackwardConfig<Element, 128>>(launch);
  }
  detail::fail_unsupported("sm90", detail::concat("backward head_dim ", head_dim, " is not compiled"));
}

void launch_backward_kernel(ElementType element, int head_dim, const BackwardLaunch& launch) {
  if (element == ElementType::bf16) {
    launch_backward_head_dim<__nv_bfloat16>(head_dim, launch);
  } else {
    launch_backward_head_dim<__half>(head_dim, launch);
  }
}

}  // namespace gna::sm90
