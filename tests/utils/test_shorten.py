"""basicsr.utils.errors.shorten: a long warning or error message on one line, never cut inside a word or sentence."""
import re

from basicsr.utils.errors import shorten

# The text of torch.compile's error without a C++ compiler (torch 2.14.1, InductorError), with a long temp path.
COMPILE_ERROR = ("InvalidCxxCompiler: No working C++ compiler found in torch._inductor.config.cpp.cxx: "
                 "('/tmp/pytest-of-someone/pytest-1234/test_missing_compiler_falls_back0/no-such-g++',)\n\n"
                 "Set TORCHDYNAMO_VERBOSE=1 for the internal stack trace (please do this especially if you're "
                 'reporting a bug to PyTorch). For even more developer context, set TORCH_LOGS="+dynamo"\n')


def test_short_text_is_kept_whole_on_one_line():
    assert shorten('no working\n  compiler found') == 'no working compiler found'
    assert shorten('x' * 300) == 'x' * 300


def test_long_text_keeps_whole_sentences_that_fit():
    out = shorten(COMPILE_ERROR, limit=300)
    assert len(COMPILE_ERROR) > 300
    assert out == ("InvalidCxxCompiler: No working C++ compiler found in torch._inductor.config.cpp.cxx: "
                   "('/tmp/pytest-of-someone/pytest-1234/test_missing_compiler_falls_back0/no-such-g++',) "
                   "Set TORCHDYNAMO_VERBOSE=1 for the internal stack trace (please do this especially if you're "
                   'reporting a bug to PyTorch).')
    assert len(out) <= 300
    assert shorten(COMPILE_ERROR, limit=200).endswith("no-such-g++',)")  # the first paragraph is a sentence
    two = shorten('First sentence here. Second one too. ' + 'word ' * 80, limit=60)
    assert two == 'First sentence here. Second one too.'


def test_a_first_sentence_longer_than_the_limit_is_cut_at_a_word_with_an_ellipsis():
    text = 'the compiled network failed because ' + ' '.join(f'reason{i}' for i in range(100)) + '. More.'
    out = shorten(text, limit=120)
    assert len(out) <= 120 and out.endswith('...')
    words = out[:-3].split()
    assert words == text.split()[:len(words)]  # whole words only, in order
    assert re.fullmatch(r'reason\d+', words[-1])


def test_a_single_word_longer_than_the_limit_is_cut_with_an_ellipsis():
    assert shorten('a' * 50, limit=20) == 'a' * 17 + '...'
