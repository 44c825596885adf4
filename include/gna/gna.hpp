// Umbrella header of the gna C++ API.
#pragma once

#include "gna/attention.hpp"
#include "gna/error.hpp"
#include "gna/problem.hpp"
#include "gna/tensor.hpp"
#include "gna/tiles.hpp"
#include "gna/version.hpp"
