/* ProcessPrng for Wine 8, which lacks bcryptprimitives.dll: Rust's standard library for
 * Windows imports it for random numbers (HashMap seeds). Test support only; it never ships.
 * It draws from advapi32's RtlGenRandom, which Wine does provide. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
