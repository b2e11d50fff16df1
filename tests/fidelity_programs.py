"""Devign-like C functions and the ways Devign breaks them, for the fidelity tests.

Devign keeps functions with lines lost (a lone ``}`` is a common loss) and with project
macros tree-sitter cannot know (``FF_DISABLE_DEPRECATION_WARNINGS``, ``CHECK_END;``). The
functions here are written in that style; `mutate` breaks one the same ways, seeded. The
templates avoid what makes a legitimate rename change only some tokens of a spelling (a global
used under a local's name, struct tags, prototype parameter names), so that on these programs
"a rename changes every code occurrence of the spelling or is refused" is the exact property.
"""
from __future__ import annotations

import random
import re

TEMPLATES = [
    """\
static int decode_frame(AVCodecContext *avctx, void *data, int *got_frame, AVPacket *avpkt)
{
    const uint8_t *buf = avpkt->data;
    int buf_size = avpkt->size;
    int ret, i, status;
    status = 0;
    if (buf_size < 4) {
        av_log(avctx, AV_LOG_ERROR, "packet too small\\n");
        return AVERROR_INVALIDDATA;
    }
    for (i = 0; i < buf_size; i++) {
        if (buf[i] == 0xff) {
            if (check_marker(avctx, buf + i)) {
                status = 1;
                break;
            }
        }
    }
    if ((ret = ff_get_buffer(avctx, data, 0)) < 0)
        return ret;
    *got_frame = status;
    return buf_size;
}
""",
    """\
static void gen_branch(DisasContext *ctx, uint32_t opc, int rs, int rt, int offset)
{
    target_ulong btgt = -1;
    int blink = 0;
    int bcond_compute = 0;
    switch (opc) {
    case OPC_BEQ:
        if (rs != rt) {
            bcond_compute = 1;
        }
        btgt = ctx->pc + 4 + offset;
        break;
    case OPC_BGEZAL:
        blink = 31;
        btgt = ctx->pc + offset;
        break;
    default:
        generate_exception(ctx, EXCP_RI);
        return;
    }
    if (blink > 0) {
        tcg_gen_movi_tl(cpu_gpr[blink], ctx->pc + 8);
    }
    ctx->btarget = btgt;
    ctx->bcond = bcond_compute;
}
""",
    """\
static int read_header(AVFormatContext *s)
{
    AVIOContext *pb = s->pb;
    AVStream *st;
    int64_t size;
    unsigned int tag, count;
    st = avformat_new_stream(s, NULL);
    if (!st)
        return AVERROR(ENOMEM);
    tag = avio_rl32(pb);
    size = avio_rl32(pb);
    for (count = 0; count < 16; count++) {
        if (avio_feof(pb)) {
            return AVERROR_EOF;
        }
        if (tag == MKTAG('d', 'a', 't', 'a')) {
            st->duration = size;
            break;
        }
        tag = avio_rl32(pb);
    }
    avpriv_set_pts_info(st, 64, 1, 90000);
    return 0;
}
""",
    """\
static int qcow_open(BlockDriverState *bs, int flags)
{
    BDRVQcowState *state = bs->opaque;
    int len, i, shift, ret;
    QCowHeader header;
    ret = bdrv_pread(bs->file, 0, &header, sizeof(header));
    if (ret < 0) {
        goto fail;
    }
    len = header.l1_size;
    shift = header.cluster_bits + header.l2_bits;
    for (i = 0; i < len; i++) {
        state->l1_table[i] = be64_to_cpu(state->l1_table[i]);
        if (state->l1_table[i] > (1 << shift)) {
            ret = -EINVAL;
            goto fail;
        }
    }
    return 0;
 fail:
    g_free(state->l1_table);
    return ret;
}
""",
    """\
static void filter_line(uint8_t *dst, const uint8_t *src, int width, int stride)
{
    int x, sum;
    for (x = 0; x < width; x++) {
        int left = x > 0 ? src[x - 1] : src[x];
        int right = x + 1 < width ? src[x + 1] : src[x];
        sum = left + 2 * src[x] + right;
        if (sum > 1020) {
            sum = 1020;
        }
        dst[x] = sum >> 2;
    }
    if (stride > width) {
        memset(dst + width, 0, stride - width);
    }
}
""",
]

MACRO_LINES = [
    "FF_DISABLE_DEPRECATION_WARNINGS",
    "FF_ENABLE_DEPRECATION_WARNINGS",
    "CHECK_PRIVILEGED",
    "CHECK_NOT_DELAY_SLOT",
    "CHECK_END;",
    "QEMU_LOCK_GUARD(&lock)",
    "#define CHECK_RET(x) if ((x) < 0) { \\",
]


def mutate(program: str, rng: random.Random) -> str:
    """Delete up to two lone `}` lines and insert up to two macro lines, at random; sometimes
    double every newline as Devign does."""
    lines = program.split("\n")
    for _ in range(rng.randint(0, 2)):
        lone = [i for i, line in enumerate(lines) if line.strip() == "}"]
        if lone:
            del lines[rng.choice(lone)]
    for _ in range(rng.randint(0, 2)):
        at = rng.randint(2, len(lines) - 2)
        indent = re.match(r"\s*", lines[at]).group()
        lines.insert(at, indent + rng.choice(MACRO_LINES))
    text = "\n".join(lines)
    if rng.random() < 0.3:
        text = text.replace("\n", "\n\n")
    return text


# A C tokenizer independent of tree-sitter: the oracle for what a rename changed.
_C_TOKEN = re.compile(
    r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'|[A-Za-z_]\w*|\d[\w.]*|->|\S",
    re.S,
)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*\Z")


def c_tokens(text: str) -> list[str]:
    return _C_TOKEN.findall(text)


def rename_mismatch(original: str, renamed: str, mapping: dict[str, str]) -> str | None:
    """Why `renamed` is not `original` with every code occurrence of each mapped spelling
    replaced by its new name and nothing else changed (None when it is).

    A code occurrence is an identifier token that is not a member name (after ``.``/``->``),
    a struct/union/enum tag or a label; comments and strings are single tokens and must not
    change.
    """
    before, after = c_tokens(original), c_tokens(renamed)
    if len(before) != len(after):
        return f"{len(before)} tokens became {len(after)}"
    for i, (old, new) in enumerate(zip(before, after)):
        previous = before[i - 1] if i else ""
        following = before[i + 1] if i + 1 < len(before) else ""
        label = previous == "goto" or (following == ":" and previous in ("", ";", "{", "}"))
        code_name = _IDENTIFIER.match(old) and not label and previous not in (".", "->", "struct", "union", "enum")
        expected = mapping.get(old, old) if code_name else old
        if new != expected:
            return f"token {i} {old!r} became {new!r}, expected {expected!r}"
    return None
