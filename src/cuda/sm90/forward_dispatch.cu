// Turns the runtime (element type, head dims) into one of the compiled
// kernel instantiations (forward_<type>_d<dim>[_dv<dim>].cu).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/check.hpp"
#include "cuda/sm90/config.hpp"
#include "cuda/sm90/launch.hpp"

namespace gna::sm90 {

template <class Config>
void launch_config(const Launch& launch);

template <class Element>
void launch_head_dims(int d, int dv, const Launch& launch) {
  if (d == dv) {
    switch (d) {
      case 32: return launch_config<ForwardConfig<Element, 32>>(launch);
      case 64: return launch_config<ForwardConfig<Element, 64>>(launch);
      case 128: return launch_config<ForwardConfig<Element, 128>>(launch);
      case 256: return launch_config<ForwardConfig<Element, 256>>(launch);
    }
  }
  if (d == 64 && dv == 128) return launch_config<ForwardConfig<Element, 64, 128>>(launch);
  if (d == 192 && dv == 128) return launch_config<ForwardConfig<Element, 192, 128>>(launch);
  detail::fail_unsupported("sm90", detail::concat("head dims ", d, " / ", dv, " are not compiled"));
}

void launch_forward(ElementType element, int head_dim, int head_dim_v, const Launch& launch) {
  if (element == ElementType::bf16) {
    launch_head_dims<__nv_bfloat16>(head_dim, head_dim_v, launch);
  } else {
    launch_head_dims<__half>(head_dim, head_dim_v, launch);
  }
}

}  // namespace gna::sm90
