#include <stddef.h>
#include <stdint.h>

struct packet {
    const uint8_t *data;
    size_t len;
    uint32_t sum;
};

/* Adler-style checksum over a packet; `len` below is the struct field, not the local. */
static uint32_t packet_checksum(struct packet *pkt, uint32_t seed)
{
    uint32_t a = seed & 0xffff, b = seed >> 16;
    size_t len = pkt->len;
    for (size_t i = 0; i < len; i++) {
        a = (a + pkt->data[i]) % 65521;
        b = (b + a) % 65521;
    }
    pkt->sum = (b << 16) | a;
    return pkt->sum;
}
