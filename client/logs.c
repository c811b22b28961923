/* Per-item logs: GetLogs paged through (see troupe/logs.h; synchronous,
 * on the calling thread). */
#include <string.h>

#include "troupe/logs.h"

int
troupe_logs_each(troupe_client *c, const troupe_logs_query *q, troupe_log_fn fn,
                 void *arg, uint32_t *attempts, uint64_t *total)
{
	Troupe__GetLogsRequest req = TROUPE__GET_LOGS_REQUEST__INIT;
	Troupe__GetLogsReply  *rep = NULL;
	char                   token[64] = "";
	int                    rv;

	req.id = (char *)q->id;
	if (q->item >= 0) {
		req.item_opt_case = TROUPE__GET_LOGS_REQUEST__ITEM_OPT_ITEM;
		req.item = (uint64_t)q->item;
		req.attempt = q->attempt;
	}
	for (;;) {
		req.page_token = token;
		if ((rv = TROUPE_CALL(c, GetLogs, &req, get_logs, &rep)) != 0)
			return rv;
		if (attempts != NULL)
			*attempts = rep->attempts;
		if (total != NULL)
			*total = rep->total;
		for (size_t i = 0; i < rep->n_logs; i++)
			if ((rv = fn(arg, rep->logs[i])) != 0)
				goto done;
		/* A token that does not move on would loop forever. */
		if (rep->next_page_token[0] == '\0' ||
		    strlen(rep->next_page_token) >= sizeof(token) ||
		    strcmp(rep->next_page_token, token) == 0)
			break;
		strcpy(token, rep->next_page_token);
		troupe__get_logs_reply__free_unpacked(rep, NULL);
		rep = NULL;
	}
done:
	troupe__get_logs_reply__free_unpacked(rep, NULL);
	return rv;
}
