// Turns the runtime (element type, head dim) into one of the compiled
// kernel instantiations (forward_<type>_d<dim>.cu).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/check.hpp"
#include "cuda/sm90/config.hpp"
#include "cuda/sm90/launch.hpp"

namespace gna::sm90 {

template <class Config>
void launch_config(const Launch& launch);

template <class Element>
void launch_head_dim(int head_dim, const Launch& launch) {
  switch (head_dim) {
    case 32: return launch_config<ForwardConfig<Element, 32>>(launch);
    case 64: return launch_config<ForwardConfig<Element, 64>>(launch);
    case 128: return launch_config<ForwardConfig<Element, 128>>(launch);
    case 256: return launch_config<ForwardConfig<Element, 256>>(launch);
  }
  detail::fail_unsupported("sm90", detail::concat("head_dim ", head_dim, " is not compiled"));
}

void launch_forward(ElementType element, int head_dim, const Launch& launch) {
  if (element == ElementType::bf16) {
    launch_head_dim<__nv_bfloat16>(head_dim, launch);
  } else {
    launch_head_dim<__half>(head_dim, launch);
  }
}

}  // namespace gna::sm90
