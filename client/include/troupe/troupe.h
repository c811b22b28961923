/* libtroupe: everything a C program needs to drive troupe. */
#ifndef TROUPE_TROUPE_H
#define TROUPE_TROUPE_H

#include "troupe/actor.h"
#include "troupe/client.h"
#include "troupe/envelope.h"
#include "troupe/error.h"
#include "troupe/home.h"
#include "troupe/logs.h"

#endif
