// libFuzzer's driver entry (compiler-rt FuzzerInterface.h). SwiftPM names an
// executable's main `<Target>_main` and aliases it, so the fuzz targets keep
// a main.swift of their own and hand control to libFuzzer through this.
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
