"""The mutants of scripts/mutants.yml stay applicable: a refactor that moves the code a mutant breaks makes this
fail (naming the entry) instead of leaving ``make mutants`` to report it stale much later."""
import os
import shlex

import pytest

from basicsr.utils.errors import UserError
from helpers import ROOT, load_script

mutants = load_script('scripts/mutants.py')
MUTANTS = mutants.load_mutants()


def test_names_are_unique_and_the_list_is_not_empty():
    names = [m.name for m in MUTANTS]
    assert len(names) >= 19 and len(set(names)) == len(names)


@pytest.mark.parametrize('mutant', MUTANTS, ids=lambda m: m.name)
def test_each_mutant_replaces_text_present_once_with_other_text(mutant):
    with open(os.path.join(ROOT, mutant.path), encoding='utf-8') as f:
        text = f.read()
    assert text.count(mutant.old) == 1, f'{mutant.name}: {mutant.path} holds its text {text.count(mutant.old)} times'
    assert mutant.new != mutant.old
    files = [t.split('::')[0] for t in mutant.tests if t.startswith('tests/')]
    assert files and all(os.path.isfile(os.path.join(ROOT, f)) for f in files), mutant.tests


def test_a_malformed_entry_is_one_line_naming_the_file_and_entry(tmp_path):
    path = tmp_path / 'mutants.yml'
    path.write_text('- name: a\n  path: x.py\n  old: "1"\n  new: "2"\n  tests: [tests/x.py]\n'
                    '- name: b\n  path: x.py\n  old: "1"\n')
    with pytest.raises(UserError, match=rf"^{path}: entry 2 must have exactly the keys \['name', 'new', 'old', "
                                        r"'path', 'tests'\]"):
        mutants.load_mutants(str(path))


def test_apply_then_restore_round_trips_on_a_copy(tmp_path):
    mutant = MUTANTS[0]
    target = tmp_path / mutant.path
    target.parent.mkdir(parents=True)
    with open(os.path.join(ROOT, mutant.path), encoding='utf-8') as f:
        original = f.read()
    target.write_text(original, encoding='utf-8')
    assert mutants.apply(str(tmp_path), mutant) == original
    assert target.read_text(encoding='utf-8') == original.replace(mutant.old, mutant.new) != original
    mutants.restore(str(tmp_path), mutant, original)
    assert target.read_text(encoding='utf-8') == original
    assert shlex.join(mutant.tests)  # printable as the pytest command it is
