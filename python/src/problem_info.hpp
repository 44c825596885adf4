// What gna.profile prints beside measured times, without the `gna` CLI: a
// problem's FLOPs, the sm90 tile simulator's figures, and which backends can
// run it (with the reason of each that cannot).
#pragma once

#include <nanobind/nanobind.h>

namespace gna::python {

void bind_problem_info(nanobind::module_& m);

}  // namespace gna::python
