// Only a header: see include/libfuzzer.h.
