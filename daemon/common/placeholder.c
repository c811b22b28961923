/*
 * Where `{}` may stand in a per-item command (see placeholder.h: no
 * state, any thread).
 *
 * A small lexer of POSIX sh (and of what bash adds that could hide a
 * quote: `$'...'`) follows the nesting of quotes and expansions and gives
 * each byte a verdict: plain shell code at the top level, inside `$( )`
 * or `( )` (safe for a quoted word), or somewhere else (not).  It errs on
 * the side of refusing: a `{}` inside `"$( )"`, a `case` inside `$( )`
 * (whose `)` the lexer cannot match) or a here-document anywhere are
 * refused although some such commands would be safe.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placeholder.h"
#include "troupe/error.h"

enum ph_kind {
	PH_TOP,    /* the command itself */
	PH_CMDSUB, /* $( ) */
	PH_SUB,    /* ( ) */
	PH_SQ,     /* ' ' */
	PH_DQ,     /* " " */
	PH_BQ,     /* ` ` */
	PH_ARITH,  /* $(( )) */
	PH_PARAM,  /* ${ } */
	PH_ANSIC,  /* $' ' */
};

/* Verdicts: 0 safe, else why not. */
enum {
	PH_OK,
	PH_IN_SQ,
	PH_IN_DQ,
	PH_IN_BQ,
	PH_IN_ARITH,
	PH_IN_PARAM,
	PH_IN_ANSIC,
	PH_ESCAPED,
	PH_EXPANSION,
	PH_COMMENT,
};

static const char *const ph_where[] = {
    [PH_OK] = "at the top level",        [PH_IN_SQ] = "inside single quotes",
    [PH_IN_DQ] = "inside double quotes", [PH_IN_BQ] = "inside backticks",
    [PH_IN_ARITH] = "inside $(( ))",     [PH_IN_PARAM] = "inside ${ }",
    [PH_IN_ANSIC] = "inside $' '",       [PH_ESCAPED] = "after a backslash",
    [PH_EXPANSION] = "right after a $",  [PH_COMMENT] = "in a comment",
};

#define PH_DEPTH 64

typedef struct ph_frame {
	enum ph_kind kind;
	int          depth; /* parentheses of $(( )), braces of ${ } */
} ph_frame;

typedef struct ph_lexer {
	const char    *s;
	size_t         n;
	unsigned char *verdict; /* per byte */
	ph_frame       st[PH_DEPTH];
	int            top;
	bool           overflow, heredoc, case_in_sub;
} ph_lexer;

/* The verdict for a byte read in the current nesting. */
static unsigned char
ph_nesting(const ph_lexer *l)
{
	for (int k = l->top; k >= 0; k--)
		switch (l->st[k].kind) {
		case PH_TOP:
		case PH_CMDSUB:
		case PH_SUB: continue;
		case PH_SQ: return PH_IN_SQ;
		case PH_DQ: return PH_IN_DQ;
		case PH_BQ: return PH_IN_BQ;
		case PH_ARITH: return PH_IN_ARITH;
		case PH_PARAM: return PH_IN_PARAM;
		case PH_ANSIC: return PH_IN_ANSIC;
		}
	return PH_OK;
}

static void
ph_push(ph_lexer *l, enum ph_kind kind)
{
	if (l->top + 1 >= PH_DEPTH) {
		l->overflow = true;
		return;
	}
	l->top++;
	l->st[l->top].kind = kind;
	l->st[l->top].depth = 0;
}

static void
ph_pop(ph_lexer *l)
{
	if (l->top > 0)
		l->top--;
}

/* Marks bytes i+1 .. i+k-1 (the rest of a token starting at i) with v. */
static void
ph_mark(ph_lexer *l, size_t i, size_t k, unsigned char v)
{
	for (size_t j = i + 1; j < i + k && j < l->n; j++)
		l->verdict[j] = v;
}

static bool
ph_word_start(const ph_lexer *l, size_t i)
{
	return i == 0 || strchr(" \t\n;&|()<>", l->s[i - 1]) != NULL;
}

/* A `$` at i: opens an expansion or is a plain byte.  Returns the bytes
 * taken. */
static size_t
ph_dollar(ph_lexer *l, size_t i, bool in_dq)
{
	char a = i + 1 < l->n ? l->s[i + 1] : '\0';
	char b = i + 2 < l->n ? l->s[i + 2] : '\0';

	if (a == '(' && b == '(') {
		ph_push(l, PH_ARITH);
		ph_mark(l, i, 3, PH_EXPANSION);
		return 3;
	}
	if (a == '(' || a == '{' || (a == '\'' && !in_dq)) {
		ph_push(l, a == '('   ? PH_CMDSUB
		           : a == '{' ? PH_PARAM
		                      : PH_ANSIC);
		ph_mark(l, i, 2, PH_EXPANSION);
		return 2;
	}
	return 1;
}

/* Reads the byte at i (and what belongs to it) in the current nesting;
 * returns the bytes taken. */
static size_t
ph_step(ph_lexer *l, size_t i)
{
	ph_frame *f = &l->st[l->top];
	char      c = l->s[i];
	char      next = i + 1 < l->n ? l->s[i + 1] : '\0';

	l->verdict[i] = ph_nesting(l);
	switch (f->kind) {
	case PH_SQ:
		if (c == '\'')
			ph_pop(l);
		return 1;
	case PH_ANSIC:
	case PH_BQ:
		if (c == '\\') {
			ph_mark(l, i, 2, PH_ESCAPED);
			return 2;
		}
		if (c == (f->kind == PH_BQ ? '`' : '\''))
			ph_pop(l);
		return 1;
	case PH_DQ:
		if (c == '\\') {
			ph_mark(l, i, 2, PH_ESCAPED);
			return 2;
		}
		if (c == '"')
			ph_pop(l);
		else if (c == '`')
			ph_push(l, PH_BQ);
		else if (c == '$')
			return ph_dollar(l, i, true);
		return 1;
	default: break;
	}
	/* Shell code: the top level, $( ), ( ), $(( )), ${ }. */
	switch (c) {
	case '\\': ph_mark(l, i, 2, PH_ESCAPED); return 2;
	case '\'': ph_push(l, PH_SQ); return 1;
	case '"': ph_push(l, PH_DQ); return 1;
	case '`': ph_push(l, PH_BQ); return 1;
	case '$': return ph_dollar(l, i, false);
	default: break;
	}
	if (f->kind == PH_ARITH) {
		if (c == '(')
			f->depth++;
		else if (c == ')' && f->depth > 0)
			f->depth--;
		else if (c == ')') {
			ph_pop(l);
			if (next == ')') {
				ph_mark(l, i, 2, PH_IN_ARITH);
				return 2;
			}
		}
		return 1;
	}
	if (f->kind == PH_PARAM) {
		if (c == '{')
			f->depth++;
		else if (c == '}' && f->depth > 0)
			f->depth--;
		else if (c == '}')
			ph_pop(l);
		return 1;
	}
	if (c == '#' && ph_word_start(l, i)) {
		size_t k = 1;

		while (i + k < l->n && l->s[i + k] != '\n')
			k++;
		l->verdict[i] = PH_COMMENT;
		ph_mark(l, i, k, PH_COMMENT);
		return k;
	}
	if (c == '(')
		ph_push(l, PH_SUB);
	else if (c == ')' && f->kind != PH_TOP)
		ph_pop(l);
	else if (c == '<' && next == '<' &&
	         (i + 2 >= l->n || l->s[i + 2] != '<'))
		l->heredoc = true;
	else if (c == '<' && next == '<')
		return 3; /* bash's <<<: a plain word follows */
	else if (f->kind != PH_TOP && c == 'c' && ph_word_start(l, i) &&
	         strncmp(l->s + i, "case", 4) == 0 &&
	         strchr(" \t\n", l->s[i + 4]) != NULL && l->s[i + 4] != '\0')
		l->case_in_sub = true;
	return 1;
}

int
placeholder_check(const char *cmd, char *why, size_t len)
{
	ph_lexer    l;
	const char *hit = strstr(cmd, "{}");
	const char *where = NULL;
	size_t      at;
	int         rv = 0;

	if (hit == NULL)
		return 0;
	at = (size_t)(hit - cmd);
	memset(&l, 0, sizeof(l));
	l.s = cmd;
	l.n = strlen(cmd);
	if ((l.verdict = calloc(l.n + 1, 1)) == NULL)
		return TROUPE_ENOMEM;
	l.st[0].kind = PH_TOP;
	for (size_t i = 0; i < l.n;)
		i += ph_step(&l, i);
	for (; hit != NULL; hit = strstr(hit + 2, "{}"))
		if (l.verdict[hit - cmd] != PH_OK) {
			at = (size_t)(hit - cmd);
			where = ph_where[l.verdict[at]];
			break;
		}
	if (where == NULL && l.heredoc)
		where = "in a command with a here-document (<<)";
	else if (where == NULL && l.case_in_sub)
		where = "in a command with a `case` inside $( ) or ( )";
	else if (where == NULL && (l.overflow || l.top != 0))
		where = "in a command whose quotes or brackets do not close";
	if (where != NULL) {
		if (why != NULL && len > 0)
			snprintf(
			    why, len,
			    "{} at offset %zu of the command stands %s, "
			    "where the item would run as shell code: write "
			    "{} as a bare word (echo {}, not echo \"{}\"), "
			    "or read the item from stdin",
			    at, where);
		rv = TROUPE_EINVAL;
	}
	free(l.verdict);
	return rv;
}
