/* placeholder: being written */
typedef int troupe_placeholder_args;
