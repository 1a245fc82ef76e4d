/* dynlib_pq.h: libpq through a table of pointers filled by dlopen on first
 * use; included instead of <libpq-fe.h>, so calls read as libpq's own. */
#ifndef MCPL_DYNLIB_PQ_H
#define MCPL_DYNLIB_PQ_H

#include <stddef.h>
#include <libpq-fe.h>

/* Every libpq function the engine calls. One used elsewhere but not listed
 * here is an undefined reference when mcplink or libmcplink.so is linked
 * (neither links libpq): add it to both lists. */
#define DYNLIB_PQ_SYMBOLS(X) \
  X(PQclear) X(PQcmdStatus) X(PQcmdTuples) X(PQconnectdbParams) X(PQconninfoFree) \
  X(PQconninfoParse) X(PQconsumeInput) X(PQerrorMessage) X(PQexec) X(PQexecPrepared) X(PQfinish) \
  X(PQfreemem) X(PQgetisnull) X(PQgetlength) X(PQgetvalue) X(PQnfields) X(PQnotifies) \
  X(PQntuples) X(PQprepare) X(PQresultErrorField) X(PQresultStatus) X(PQsocket) X(PQstatus)

typedef struct {
#define DYNLIB_PQ_FIELD(f) __typeof__(f) *p_##f;
  DYNLIB_PQ_SYMBOLS(DYNLIB_PQ_FIELD)
#undef DYNLIB_PQ_FIELD
} dynlib_pq_api;

/* Loads libpq once (the first caller of either function, from any thread;
 * the others wait). dynlib_pq_ready: 0, or -1 with why in err ("libpq.so.5
 * could not be loaded ..."). An entry point checks it before the first
 * call; dynlib_pq() itself aborts when the library is not there. */
int dynlib_pq_ready(char *err, size_t en);
const dynlib_pq_api *dynlib_pq(void);

#define PQclear (*dynlib_pq()->p_PQclear)
#define PQcmdStatus (*dynlib_pq()->p_PQcmdStatus)
#define PQcmdTuples (*dynlib_pq()->p_PQcmdTuples)
#define PQconnectdbParams (*dynlib_pq()->p_PQconnectdbParams)
#define PQconninfoFree (*dynlib_pq()->p_PQconninfoFree)
#define PQconninfoParse (*dynlib_pq()->p_PQconninfoParse)
#define PQconsumeInput (*dynlib_pq()->p_PQconsumeInput)
#define PQerrorMessage (*dynlib_pq()->p_PQerrorMessage)
#define PQexec (*dynlib_pq()->p_PQexec)
#define PQexecPrepared (*dynlib_pq()->p_PQexecPrepared)
#define PQfinish (*dynlib_pq()->p_PQfinish)
#define PQfreemem (*dynlib_pq()->p_PQfreemem)
#define PQgetisnull (*dynlib_pq()->p_PQgetisnull)
#define PQgetlength (*dynlib_pq()->p_PQgetlength)
#define PQgetvalue (*dynlib_pq()->p_PQgetvalue)
#define PQnfields (*dynlib_pq()->p_PQnfields)
#define PQnotifies (*dynlib_pq()->p_PQnotifies)
#define PQntuples (*dynlib_pq()->p_PQntuples)
#define PQprepare (*dynlib_pq()->p_PQprepare)
#define PQresultErrorField (*dynlib_pq()->p_PQresultErrorField)
#define PQresultStatus (*dynlib_pq()->p_PQresultStatus)
#define PQsocket (*dynlib_pq()->p_PQsocket)
#define PQstatus (*dynlib_pq()->p_PQstatus)

#endif
