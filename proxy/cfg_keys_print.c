#include "cfg_keys.h"
#include "proto.h"

#include <stdio.h>
#include <string.h>

/*
 * `portier -K`: the key table as Markdown, the reference docs/configuration.md
 * carries (between its keys:begin and keys:end marks).
 */

/* Markdown table cells: a '|' inside a cell must be escaped. */
static void cell(void *stream, const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			fputc('\\', stream);
		fputc(*s, stream);
	}
}

/* "per protocol (...)": the defaults the protocol table applies, so the
 * reference shows what a listener really gets. */
static void print_per_protocol(void *stream, const char *key)
{
	fputs("per protocol (", stream);
	for (size_t i = 0; i < proto_count(); i++) {
		const struct proto *p = proto_at(i);
		fprintf(stream, "%s%s ", i ? ", " : "", p->name);
		if (strcmp(key, "alpn") == 0)
			fputs(p->alpn[0] ? p->alpn : "none", stream);
		else if (p->idle_ms % 3600000 == 0)
			fprintf(stream, "%uh", p->idle_ms / 3600000);
		else if (p->idle_ms % 60000 == 0 && p->idle_ms > 60000)
			fprintf(stream, "%um", p->idle_ms / 60000);
		else
			fprintf(stream, "%us", p->idle_ms / 1000);
	}
	fputs(")", stream);
}

void cfg_keys_print(void *stream)
{
	fprintf(stream, "| key | section | type | default | meaning |\n");
	fprintf(stream, "|---|---|---|---|---|\n");
	for (size_t i = 0; i < cfg_nkeys; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		char where[64];
		size_t n;
		snprintf(where, sizeof(where), "%s%s%s", k->where & CFG_SEC_GLOBAL ? "[portier] " : "",
		         k->where & CFG_SEC_TLS ? "[tls] " : "", k->where & (CFG_SEC_TLS | CFG_SEC_LISTENER) ? "listener" : "");
		n = strlen(where);
		if (n && where[n - 1] == ' ')
			where[n - 1] = '\0';
		fprintf(stream, "| `%s` | %s%s | ", k->name, where,
		        k->repeatable ? " (repeatable)" : "");
		cell(stream, k->type);
		fputs(" | ", stream);
		if (strcmp(k->def, "per protocol") == 0)
			print_per_protocol(stream, k->name);
		else
			cell(stream, k->def);
		fputs(" | ", stream);
		cell(stream, k->help);
		fputs(" |\n", stream);
	}
}
