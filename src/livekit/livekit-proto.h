/* The generated protobuf-c code for the LiveKit messages (proto/livekit_haven.proto, compiled
 * into the build directory by protoc-c). Include this rather than the generated header.
 */
#ifndef HV_LIVEKIT_PROTO_H
#define HV_LIVEKIT_PROTO_H

#include <protobuf-c/protobuf-c.h>

/* Only a tool that does not read system headers (cppcheck) gets here without the version: the
 * generated header's version check would then fail for it. Compilers never take this branch. */
#ifndef PROTOBUF_C_VERSION_NUMBER
#define PROTOBUF_C_VERSION_NUMBER 1004001
#endif

#include "livekit_haven.pb-c.h"

#endif
