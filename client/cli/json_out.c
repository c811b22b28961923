/* JSON rendering with json-c (see json_out.h). */
#include <string.h>

#include "json_out.h"

const char *
cli_enum_name(const ProtobufCEnumDescriptor *d, int value)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(d, value);
	size_t common;

	if (v == NULL)
		return "UNKNOWN";
	/* The longest prefix ending in '_' that every value shares. */
	common = strlen(d->values[0].name);
	for (unsigned i = 1; i < d->n_values; i++) {
		const char *a = d->values[0].name, *b = d->values[i].name;
		size_t      k = 0;

		while (k < common && a[k] != '\0' && a[k] == b[k])
			k++;
		common = k;
	}
	while (common > 0 && d->values[0].name[common - 1] != '_')
		common--;
	if (d->n_values < 2 || v->name[common] == '\0')
		return v->name;
	return v->name + common;
}

/* Returns the JSON of one value of field f stored at p. */
static json_object *
json_value(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_object_new_int(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_object_new_int64(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return json_object_new_int64(*(const int64_t *)p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return json_object_new_uint64(*(const uint64_t *)p);
	case PROTOBUF_C_TYPE_FLOAT:
		return json_object_new_double(*(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return json_object_new_double(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return json_object_new_boolean(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM:
		return json_object_new_string(
		    cli_enum_name(f->descriptor, *(const int *)p));
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return json_object_new_string(s != NULL ? s : "");
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		return json_object_new_string_len(
		    b->data != NULL ? (const char *)b->data : "", (int)b->len);
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return cli_json_message(*(ProtobufCMessage *const *)p);
	}
	return NULL;
}

/* Whether md is the entry type protoc generates for a map<,> field. */
static int
json_is_map_entry(const ProtobufCMessageDescriptor *md)
{
	size_t n = strlen(md->name);

	return n > 5 && strcmp(md->name + n - 5, "Entry") == 0 &&
	       md->n_fields == 2 && strcmp(md->fields[0].name, "key") == 0 &&
	       strcmp(md->fields[1].name, "value") == 0 &&
	       md->fields[0].type == PROTOBUF_C_TYPE_STRING;
}

/* Returns the JSON of a repeated field: an array, or an object for a map
 * field. */
static json_object *
json_repeated(const ProtobufCFieldDescriptor *f, const char *base)
{
	size_t       n = *(const size_t *)(base + f->quantifier_offset);
	const char  *arr = *(char *const *)(base + f->offset);
	size_t       sz;
	json_object *out;

	if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
	    json_is_map_entry(f->descriptor)) {
		const ProtobufCMessageDescriptor *md = f->descriptor;

		if ((out = json_object_new_object()) == NULL)
			return NULL;
		for (size_t i = 0; i < n; i++) {
			const char *e = ((char *const *)arr)[i];
			const char *k =
			    *(char *const *)(e + md->fields[0].offset);

			json_object_object_add(
			    out, k,
			    json_value(&md->fields[1],
			               e + md->fields[1].offset));
		}
		return out;
	}
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE: sz = 8; break;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE: sz = sizeof(void *); break;
	case PROTOBUF_C_TYPE_BYTES: sz = sizeof(ProtobufCBinaryData); break;
	case PROTOBUF_C_TYPE_BOOL: sz = sizeof(protobuf_c_boolean); break;
	default: sz = 4; break;
	}
	if ((out = json_object_new_array()) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		json_object_array_add(out, json_value(f, arr + i * sz));
	return out;
}

json_object *
cli_json_message(const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *md;
	const char                       *base = (const char *)msg;
	json_object                      *obj;

	if (msg == NULL)
		return NULL;
	md = msg->descriptor;
	if ((obj = json_object_new_object()) == NULL)
		return NULL;
	for (unsigned i = 0; i < md->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &md->fields[i];
		json_object                    *v;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			v = json_repeated(f, base);
		} else {
			if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
			    *(const uint32_t *)(base + f->quantifier_offset) !=
			        f->id)
				continue;
			v = json_value(f, base + f->offset);
		}
		json_object_object_add(obj, f->name, v);
	}
	return obj;
}

json_object *
cli_json_item(const Troupe__ItemResult *r)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "index", json_object_new_uint64(r->index));
	json_object_object_add(o, "state",
	                       json_object_new_string(cli_enum_name(
	                           &troupe__item_state__descriptor, r->state)));
	json_object_object_add(
	    o, "output",
	    r->state == TROUPE__ITEM_STATE__ITEM_SUCCEEDED
	        ? json_object_new_string_len(r->output.data != NULL
	                                         ? (const char *)r->output.data
	                                         : "",
	                                     (int)r->output.len)
	        : NULL);
	json_object_object_add(o, "error",
	                       r->error != NULL && r->error[0] != '\0'
	                           ? json_object_new_string(r->error)
	                           : NULL);
	json_object_object_add(o, "attempts",
	                       json_object_new_int64(r->attempts));
	json_object_object_add(o, "exit_code",
	                       json_object_new_int(r->exit_code));
	json_object_object_add(o, "worker",
	                       r->worker != NULL && r->worker[0] != '\0'
	                           ? json_object_new_string(r->worker)
	                           : NULL);
	return o;
}

int
cli_json_println(FILE *f, json_object *obj)
{
	size_t      len = 0;
	const char *s = json_object_to_json_string_length(
	    obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	int rv = 0;

	if (s == NULL || fwrite(s, 1, len, f) != len || fputc('\n', f) == EOF)
		rv = -1;
	json_object_put(obj);
	return rv;
}
