/* The bus's publish, compiled (built as the top-level module _gfws_bus; gfws.publish.bus uses it where
 * it is built and keeps its pure-Python publish otherwise: the same calls, counts and errors).
 *
 * Why: every event of a feed passes here.  In Python this one call costs ~2,000 instructions an event
 * (the type's count, the subscriber tuple, a try per subscriber, the sinks' check), about a fifth of a
 * book update's whole way in.  Here it is a few dozen plus the subscribers' own calls.
 *
 * A Fanout is callable with one event: the count of its type goes up, each subscriber of that type is
 * called in order (an Exception from one goes to `failed(subscriber, error)` and the others still get
 * the event; anything else goes on up), then, while sinks are attached, `queue(event)` batches it for
 * them.  The routes (type -> subscribers) are set by `route(dict)` whenever a subscription changes. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#define MAX_ROUTES 64 /* event types: gfws has about ten */

typedef struct {
    PyObject *type;        /* a reference */
    PyObject *subscribers; /* tuple */
    Py_ssize_t published;
} Route;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *failed; /* callable(subscriber, error) */
    PyObject *queue;  /* callable(event): the sinks' batch, or NULL while none is attached */
    int nroutes;
    Route routes[MAX_ROUTES];
} FanoutObject;

static PyObject *Fanout_publish(FanoutObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "publish(event) takes one event");
        return NULL;
    }
    if (self->failed == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Fanout not initialised");
        return NULL;
    }
    PyObject *event = args[0], *kind = (PyObject *)Py_TYPE(event);
    Route *route = NULL;
    for (int i = 0; i < self->nroutes; i++) {
        if (self->routes[i].type == kind) {
            route = &self->routes[i];
            break;
        }
    }
    if (route == NULL) { /* not an event type: as the pure bus's count lookup */
        PyErr_SetObject(PyExc_KeyError, kind);
        return NULL;
    }
    route->published++;
    PyObject *subscribers = Py_NewRef(route->subscribers); /* a subscriber may change the routes */
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(subscribers); i++) {
        PyObject *subscriber = PyTuple_GET_ITEM(subscribers, i);
        PyObject *done = PyObject_Vectorcall(subscriber, &event, 1, NULL);
        if (done != NULL) {
            Py_DECREF(done);
            continue;
        }
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            Py_DECREF(subscribers);
            return NULL;
        }
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb != NULL && value != NULL) PyException_SetTraceback(value, tb);
        Py_XDECREF(type);
        Py_XDECREF(tb);
        PyObject *report[2] = {subscriber, value != NULL ? value : Py_None};
        done = PyObject_Vectorcall(self->failed, report, 2, NULL);
        Py_XDECREF(value);
        if (done == NULL) {
            Py_DECREF(subscribers);
            return NULL;
        }
        Py_DECREF(done);
    }
    Py_DECREF(subscribers);
    if (self->queue != NULL) {
        PyObject *done = PyObject_Vectorcall(self->queue, &event, 1, NULL);
        if (done == NULL) return NULL;
        Py_DECREF(done);
    }
    Py_RETURN_NONE;
}

static PyObject *Fanout_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    FanoutObject *self = (FanoutObject *)type->tp_alloc(type, 0);
    if (self != NULL) self->vectorcall = (vectorcallfunc)Fanout_publish;
    return (PyObject *)self;
}

static int Fanout_init(FanoutObject *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"failed", NULL};
    PyObject *failed;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", names, &failed)) return -1;
    if (!PyCallable_Check(failed)) {
        PyErr_SetString(PyExc_TypeError, "failed must be callable");
        return -1;
    }
    Py_XSETREF(self->failed, Py_NewRef(failed));
    return 0;
}

/* route({type: (subscriber, ...)}): the subscribers of each type from now on.  A type's count is kept
 * across changes; a type left out has no subscriber (and is still an event type). */
static PyObject *Fanout_route(FanoutObject *self, PyObject *dispatch) {
    if (!PyDict_Check(dispatch)) {
        PyErr_SetString(PyExc_TypeError, "route() takes a dict of type -> tuple of subscribers");
        return NULL;
    }
    PyObject *kind, *subscribers;
    Py_ssize_t pos = 0;
    while (PyDict_Next(dispatch, &pos, &kind, &subscribers)) {
        if (!PyType_Check(kind) || !PyTuple_Check(subscribers)) {
            PyErr_SetString(PyExc_TypeError, "route() takes a dict of type -> tuple of subscribers");
            return NULL;
        }
    }
    for (int i = 0; i < self->nroutes; i++) Py_SETREF(self->routes[i].subscribers, PyTuple_New(0));
    pos = 0;
    while (PyDict_Next(dispatch, &pos, &kind, &subscribers)) {
        Route *route = NULL;
        for (int i = 0; i < self->nroutes; i++)
            if (self->routes[i].type == kind) route = &self->routes[i];
        if (route == NULL) {
            if (self->nroutes == MAX_ROUTES) {
                PyErr_SetString(PyExc_ValueError, "too many event types");
                return NULL;
            }
            route = &self->routes[self->nroutes++];
            route->type = Py_NewRef(kind);
            route->subscribers = NULL;
            route->published = 0;
        }
        Py_XSETREF(route->subscribers, Py_NewRef(subscribers));
    }
    Py_RETURN_NONE;
}

static PyObject *Fanout_counts(FanoutObject *self, PyObject *unused) {
    PyObject *counts = PyDict_New();
    if (counts == NULL) return NULL;
    for (int i = 0; i < self->nroutes; i++) {
        PyObject *n = PyLong_FromSsize_t(self->routes[i].published);
        if (n == NULL || PyDict_SetItem(counts, self->routes[i].type, n) < 0) {
            Py_XDECREF(n);
            Py_DECREF(counts);
            return NULL;
        }
        Py_DECREF(n);
    }
    return counts;
}

static PyObject *Fanout_get_queue(FanoutObject *self, void *c) {
    return Py_NewRef(self->queue != NULL ? self->queue : Py_None);
}

static int Fanout_set_queue(FanoutObject *self, PyObject *value, void *c) {
    if (value == NULL || (value != Py_None && !PyCallable_Check(value))) {
        PyErr_SetString(PyExc_TypeError, "queue must be callable or None");
        return -1;
    }
    Py_XSETREF(self->queue, value != Py_None ? Py_NewRef(value) : NULL);
    return 0;
}

static int Fanout_traverse(FanoutObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->failed);
    Py_VISIT(self->queue);
    for (int i = 0; i < self->nroutes; i++) {
        Py_VISIT(self->routes[i].type);
        Py_VISIT(self->routes[i].subscribers);
    }
    return 0;
}

static int Fanout_clear(FanoutObject *self) {
    Py_CLEAR(self->failed);
    Py_CLEAR(self->queue);
    for (int i = 0; i < self->nroutes; i++) {
        Py_CLEAR(self->routes[i].type);
        Py_CLEAR(self->routes[i].subscribers);
    }
    self->nroutes = 0;
    return 0;
}

static void Fanout_dealloc(FanoutObject *self) {
    PyObject_GC_UnTrack(self);
    Fanout_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Fanout_methods[] = {
    {"route", (PyCFunction)Fanout_route, METH_O, "route({type: (subscriber, ...)}): the subscribers from now on."},
    {"counts", (PyCFunction)Fanout_counts, METH_NOARGS, "{type: events published} for every type routed."},
    {NULL}
};

static PyGetSetDef Fanout_getset[] = {
    {"queue", (getter)Fanout_get_queue, (setter)Fanout_set_queue,
     "callable(event) batching every event for the sinks, or None while none is attached", NULL},
    {NULL}
};

static PyTypeObject FanoutType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_gfws_bus.Fanout",
    .tp_doc = "Fanout(failed): the bus's publish; call it with an event.",
    .tp_basicsize = sizeof(FanoutObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(FanoutObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = Fanout_new,
    .tp_init = (initproc)Fanout_init,
    .tp_dealloc = (destructor)Fanout_dealloc,
    .tp_traverse = (traverseproc)Fanout_traverse,
    .tp_clear = (inquiry)Fanout_clear,
    .tp_methods = Fanout_methods,
    .tp_getset = Fanout_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_gfws_bus", "The bus's publish, compiled (gfws.publish.bus).", -1, NULL,
};

PyMODINIT_FUNC PyInit__gfws_bus(void) {
    if (PyType_Ready(&FanoutType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Fanout", (PyObject *)&FanoutType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
