// Mazkira's small script: only what htmx cannot do by itself.
"use strict";
