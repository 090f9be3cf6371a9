/* The TensorBoard part of trainguard._speedups (_speedups_tb.c), added to the module by PyInit__speedups. */
#ifndef TRAINGUARD_SPEEDUPS_TB_H
#define TRAINGUARD_SPEEDUPS_TB_H
#include <Python.h>

extern PyMethodDef tb_methods[]; /* tb_scan */
void tb_init(void);              /* the CRC tables */

#endif
