/*
 * JSON rendering for `--json`, with json-c.  Messages are rendered
 * generically from their protobuf-c descriptors, so a field added to
 * api.proto shows up without touching this file:
 *   - keys are the .proto field names (snake_case);
 *   - enums are their value names without the prefix all values share
 *     ("PHASE_RUNNING" -> "RUNNING");
 *   - 64-bit integers are JSON numbers; bytes are JSON strings holding the
 *     bytes as they are: json-c escapes quotes, backslashes and control
 *     characters (NUL as \u0000) and passes every other byte through, so
 *     an output that is not UTF-8 gives a line that is not UTF-8 either;
 *   - an unset oneof member is left out; an absent submessage is null;
 *   - map fields (map<string,string>) are JSON objects.
 */
#ifndef TROUPE_CLI_JSON_OUT_H
#define TROUPE_CLI_JSON_OUT_H

#include <stdio.h>

#include <json-c/json.h>
#include <protobuf-c/protobuf-c.h>

#include "api.pb-c.h"

/* Returns a new JSON object for msg (NULL msg: a JSON null, i.e. NULL), or
 * NULL when out of memory.  The caller owns it (json_object_put). */
json_object *cli_json_message(const ProtobufCMessage *msg);

/* Returns the enum value's name without its shared prefix, static. */
const char *cli_enum_name(const ProtobufCEnumDescriptor *d, int value);

/* Returns a new JSON object for one item of `map --json` / `outputs
 * --json`: index, state, output (null unless SUCCEEDED), error (null when
 * empty), attempts, exit_code, worker.  The caller owns it. */
json_object *cli_json_item(const Troupe__ItemResult *r);

/* Writes obj as one line (compact, no "\/" escapes) to f and drops the
 * caller's reference to obj.  Returns 0, or -1 when f failed. */
int cli_json_println(FILE *f, json_object *obj);

#endif
