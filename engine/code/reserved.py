"""Keywords, scope-blind names and library names, per language.

A keyword breaks the parse, so it is always refused. `SCOPE_BLIND` names get their meaning from
the compiler or preprocessor whatever the scope (C's standard macros and type names: a local
named `errno` is rewritten by the preprocessor), so they are always refused too. Library and
builtin names (`LIBRARY_NAMES`) are refused only where the program uses them near the renamed
variable (`engine.code.collisions`): a local renamed to `len` in a function that never calls
`len` changes nothing; the lists stay for name pools, which leave them out.
"""
from __future__ import annotations

import builtins
import keyword

C_KEYWORDS = frozenset(
    """
    auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic
    _Imaginary _Noreturn _Static_assert _Thread_local alignas alignof bool constexpr false
    nullptr static_assert thread_local true typeof typeof_unqual asm __asm__ __attribute__
    __inline __inline__ __restrict __restrict__ __volatile__ __extension__ __typeof__
    """.split()
)

# C++ keywords are not refused in C: the C of the real data (QEMU, FFmpeg in Devign) is
# compiled as C and names its variables `class`, `new`, `typename`, `this`, and a rename must
# be able to give back the names the program itself uses. Those that <iso646.h> defines as
# macros (`and`, `or`, `not`, ...) are refused: the preprocessor rewrites them.
C_ISO646 = frozenset("and and_eq bitand bitor compl not not_eq or or_eq xor xor_eq".split())

CPP_KEYWORDS = frozenset(
    """
    and and_eq bitand bitor catch char8_t char16_t char32_t class co_await co_return co_yield
    compl concept consteval constinit const_cast decltype delete dynamic_cast explicit export
    friend mutable namespace new noexcept not not_eq operator or or_eq private protected public
    reinterpret_cast requires static_cast template this throw try typeid typename using virtual
    wchar_t xor xor_eq final override
    """.split()
)

C_LIBRARY = frozenset(
    """
    NULL EOF BUFSIZ FILENAME_MAX EXIT_SUCCESS EXIT_FAILURE RAND_MAX INT_MAX INT_MIN UINT_MAX
    LONG_MAX LONG_MIN CHAR_BIT SIZE_MAX errno assert offsetof va_list va_start va_arg va_end
    va_copy stdin stdout stderr FILE size_t ssize_t ptrdiff_t intptr_t uintptr_t wchar_t
    int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t off_t time_t clock_t
    main printf fprintf sprintf snprintf vprintf vfprintf vsprintf vsnprintf scanf fscanf sscanf
    puts fputs gets fgets putchar getchar fputc fgetc getc putc ungetc fopen fclose fread fwrite
    fseek ftell rewind fflush feof ferror perror remove rename tmpfile malloc calloc realloc free
    abort exit atexit atoi atol atoll atof strtol strtoul strtoll strtoull strtod abs labs div
    rand srand qsort bsearch getenv system memcpy memmove memset memcmp memchr strcpy strncpy
    strcat strncat strcmp strncmp strchr strrchr strstr strlen strdup strndup strtok strerror
    isalpha isdigit isalnum isspace isupper islower toupper tolower isprint ispunct isxdigit
    sqrt pow exp log log2 log10 sin cos tan floor ceil fabs fmod round time clock
    cout cin cerr endl std string vector
    """.split()
)

JAVA_KEYWORDS = frozenset(
    """
    abstract assert boolean break byte case catch char class const continue default do double
    else enum extends final finally float for goto if implements import instanceof int
    interface long native new package private protected public return short static strictfp
    super switch synchronized this throw throws transient try void volatile while true false
    null _ var yield
    """.split()
)
# `record`, `module`, `to`, `with`, `when`, `sealed`, ... are contextual keywords that javac
# (17, 25) accepts as local names and that real code uses (`Arrays.copyOfRange(a, from, to)`);
# `var` and `yield` are legal locals too but restricted in type and statement position, so they
# stay refused.

JAVA_LIBRARY = frozenset(
    """
    String Object Integer Long Short Byte Double Float Boolean Character Number Math System
    StringBuilder StringBuffer Exception RuntimeException Error Throwable Thread Runnable Class
    Iterable Comparable Override Deprecated SuppressWarnings FunctionalInterface Void Enum Record
    List ArrayList LinkedList Map HashMap TreeMap LinkedHashMap Set HashSet TreeSet Collection
    Collections Arrays Iterator Optional Objects Scanner IOException File main args length
    println print out err in
    """.split()
)

_PYTHON2_NAMES = {
    "print", "exec", "xrange", "raw_input", "unicode", "long", "basestring", "unichr",
    "reduce", "file", "cmp", "execfile", "reload", "apply", "buffer", "intern", "coerce",
}


def is_python_dunder(name: str) -> bool:
    """`__x__`: a name Python reserves for itself. Names made only of underscores (`___`) are not:
    Python neither mangles them nor gives them a meaning. One rule for the extraction (which
    excludes module dunders) and the rename constraints (which refuse them as new names), so that a
    rename to `___` is never admitted by one and excluded by the other (measured: a gcjpy module
    variable renamed to ALERT's substitute `___` dropped out of the renameable set)."""
    return name.startswith("__") and name.endswith("__") and bool(name.strip("_"))


# Soft keywords (`match`, `case`, `type`, `_`) are ordinary names outside their statements;
# `print` and `exec` are keywords of Python 2, which most of the real data is.
PYTHON_KEYWORDS = frozenset(keyword.kwlist) | {"print", "exec"}

PYTHON_LIBRARY = (
    frozenset(name for name in dir(builtins) if not name.startswith("__"))
    | frozenset(_PYTHON2_NAMES)
    | frozenset(
        """
        self cls sys os re math string collections itertools functools random time json io
        typing __name__ __main__ __file__ __doc__ __init__ __class__ __dict__ __builtins__
        """.split()
    )
)

C_SCOPE_BLIND = frozenset(
    """
    NULL EOF BUFSIZ FILENAME_MAX EXIT_SUCCESS EXIT_FAILURE RAND_MAX INT_MAX INT_MIN UINT_MAX
    LONG_MAX LONG_MIN CHAR_BIT SIZE_MAX errno assert offsetof va_list va_start va_arg va_end
    va_copy stdin stdout stderr FILE size_t ssize_t ptrdiff_t intptr_t uintptr_t wchar_t
    int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t off_t time_t clock_t
    __func__ __FILE__ __LINE__ __DATE__ __TIME__ __STDC__ __STDC_VERSION__ __cplusplus
    TRUE FALSE
    _Nonnull __alignof __alignof__ __asm __attribute __based __cdecl __clrcall __declspec
    __except __fastcall __finally __forceinline __leave __stdcall __thiscall __thread __try
    __unaligned __vectorcall _alignof _unaligned defined noreturn
    """.split()
)
# `TRUE`/`FALSE` are macros of many C code bases that tree-sitter-c reads as the literals
# `true`/`false`, and the last lines are compiler extensions (and `defined`) that it reads as
# keywords: a variable renamed to any of them would change the parse
# (tests/test_code_collisions.py checks the grammar has no other word of its own).

SCOPE_BLIND = {
    "c": C_SCOPE_BLIND,
    "java": frozenset(),
    "python": frozenset(),
}

KEYWORDS = {
    "c": C_KEYWORDS | C_ISO646,
    "java": JAVA_KEYWORDS,
    "python": PYTHON_KEYWORDS,
}

LIBRARY_NAMES = {
    "c": C_LIBRARY,
    "java": JAVA_LIBRARY,
    "python": PYTHON_LIBRARY,
}
