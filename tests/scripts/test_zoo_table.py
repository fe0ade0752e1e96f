"""scripts/zoo_table.py: the cards at one scale as README's Markdown table; bad flags are one line, exit 2."""
import subprocess
import sys

from basicsr import zoo
from helpers import ROOT, load_script

script = load_script('scripts/zoo_table.py')


def test_one_row_per_card_at_the_scale_with_the_card_figures():
    lines = script.table(4, ['KITTI2015', 'KITTI2012'])
    assert lines[0] == ('| model | params | GMACs (320x180) | published KITTI2015 | published KITTI2012 | colour | '
                        'weights |')
    rows = {line.split(' | ')[0][2:]: line for line in lines[2:]}
    assert list(rows) == [c.name for c in zoo.MODELS.values() if c.scale == 4]
    # basicsr/zoo.py: NAFSSR-T x4 0.46M, 85.8 GMACs, KITTI2015 26.62/0.8159 and KITTI2012 26.79/0.8105 (source O)
    assert rows['NAFSSR-T_x4'] == ('| NAFSSR-T_x4 | 0.46M | 85.8 | 26.62/0.8159 | 26.79/0.8105 | BGR | '
                                   'manual download |')
    assert rows['CVHSSR-T_x4'].endswith('| BGR | direct link |')
    assert '| 26.89/0.8283 * |' in rows['SwinFIRSSR_x4']  # the zoo notes another protocol (a border crop)
    assert '| not published |' in rows['EHFSSR_S_x4']  # its KITTI2012 x4 figure is left out


def test_bad_flags_are_one_line_exit_2():
    for argv, message in ((['--scale', '3'], '--scale: the zoo has no card at x3; its scales: 2, 4'),
                          (['--sets', 'Midlebury'], '--sets: unknown Midlebury; expected some of KITTI2012, ')):
        done = subprocess.run([sys.executable, 'scripts/zoo_table.py', *argv], cwd=ROOT, capture_output=True,
                              text=True)
        assert done.returncode == 2 and done.stdout == '', argv
        assert done.stderr.startswith(f'zoo_table.py: error: {message}') and done.stderr.count('\n') == 1
