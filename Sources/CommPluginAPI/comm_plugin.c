/* Compiles the ABI header as C11 so its layout assertions run in every build. */
#include "comm_plugin.h"
