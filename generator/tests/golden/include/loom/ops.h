// generated from the list of operators in opdefs/ — do not edit
// Every operator's C++ API: loom::op::<name>(...).
#pragma once

#include "loom/ops/add.h"
#include "loom/ops/relu.h"
