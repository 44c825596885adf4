#include "gpu_test.hpp"

#include <algorithm>
#include <sstream>

#include "harness/buffer.hpp"

namespace gna::gpu_test {

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

Problem window_problem(std::vector<int64_t> extent, std::vector<int64_t> kernel,
                       std::vector<int64_t> stride, std::vector<int64_t> dilation,
                       std::vector<bool> causal) {
  Problem p;
  p.params.rank = static_cast<int>(extent.size());
  for (int a = 0; a < p.params.rank; ++a) {
    p.extent[a] = extent[a];
    AxisParams& ax = p.params.axis[a];
    ax.kernel_size = kernel[a];
    ax.stride = stride.empty() ? 1 : stride[a];
    ax.dilation = dilation.empty() ? 1 : dilation[a];
    ax.is_causal = causal.empty() ? false : static_cast<bool>(causal[a]);
  }
  p.batch = 1;
  p.heads = 2;
  p.kv_heads = 1;
  p.head_dim = 64;
  p.head_dim_v = 64;
  p.dtype = DType::f16;
  validate(p);
  return p;
}

Options options_for(const std::string& backend) {
  Options options;
  options.backend = backend;
  return options;
}

void GpuTest::SetUp() {
  backend_ = GetParam();
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  const std::vector<std::string> built = backend_names();
  if (std::find(built.begin(), built.end(), backend_) == built.end()) {
    GTEST_SKIP() << backend_ << " is not built into this library";
  }
  device_ = *harness::device_for_backend(backend_);
  // A problem every GPU backend claims: if this is refused, the backend
  // cannot run on this device at all (e.g. sm90 on a non-Hopper GPU).
  const std::string why = reason(window_problem({64}, {7}), Pass::forward);
  if (!why.empty()) {
    GTEST_SKIP() << backend_ << " cannot run on " << harness::device_description(device_) << ": "
                 << why;
  }
}

std::string GpuTest::reason(const Problem& p, Pass pass) const {
  for (const BackendInfo& info : backends(p, pass, device_)) {
    if (info.name == backend_) return info.reason;
  }
  return "unknown backend";
}

void GpuTest::check(const Problem& p, Pass pass, harness::Layout layout) {
  harness::CaseSpec spec;
  spec.problem = p;
  spec.layout = layout;
  spec.pass = pass;
  spec.seed = seed_++;
  const harness::CaseResult r = harness::run_case(spec, backend_, device_);
  const char* pass_name = pass == Pass::forward ? "forward" : "backward";
  if (!r.ran) {
    ++skipped_;
    skip_reason_ = r.skipped;
    // The generic backend is the fallback: it must run everything but f64.
    if (backend_ == "cuda-generic") {
      ADD_FAILURE() << "cuda-generic refused " << pass_name << " of " << p.describe() << ": "
                    << r.skipped;
    }
    return;
  }
  ++ran_;
  EXPECT_TRUE(r.passed) << backend_ << " " << pass_name << " " << p.describe() << " layout "
                        << harness::layout_name(layout) << " seed " << spec.seed
                        << ": worst error/tolerance " << r.worst << " in " << r.worst_tensor << "; "
                        << r.detail;
}

void GpuTest::check_both(Problem p, std::initializer_list<DType> dtypes, harness::Layout layout) {
  for (DType dtype : dtypes) {
    p.dtype = dtype;
    check(p, Pass::forward, layout);
    check(p, Pass::backward, layout);
  }
}

std::string GpuTest::nothing_ran() const {
  std::ostringstream os;
  os << backend_ << " refused all " << skipped_ << " cases (last reason: " << skip_reason_ << ")";
  return os.str();
}

}  // namespace gna::gpu_test
