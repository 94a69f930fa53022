// The machine this worker runs on, as messages and timelines name it.
#pragma once

#include <string>

namespace dptrain {

// This machine's host name ("unknown-host" when the system cannot tell).
std::string host_name();

}  // namespace dptrain
