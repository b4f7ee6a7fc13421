#include "trace/trace-accel_nitro.h"
