#!/bin/sh
# hello @version@ for @system@
cat @greeting@
