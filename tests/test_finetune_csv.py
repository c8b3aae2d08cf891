"""How finetune's reader takes a user's captions.csv / qa.csv / COCO file apart: no caption silently cut, each bad
row reported on the line it starts, a missing picture's likely cause named (tests/test_finetune_data.py: the forms)."""
from __future__ import annotations

import json
import os
import unicodedata

import pytest
from PIL import Image

import mmkit
from mmkit.tuning import read_examples


def _pictures(folder, *names):
    """Tiny pictures under folder (sub-folders made as needed)."""
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8 + i, 8), (40 * i, 90, 200)).save(folder / name, format="PNG")


def _csv(folder, text, name="captions.csv"):
    (folder / name).write_text(text, encoding="utf-8", newline="")
    return folder


def test_a_row_with_more_fields_than_the_header_is_reported_not_cut(tmp_path):
    _pictures(tmp_path, "a.png", "b.png")
    _csv(tmp_path, "image,caption\na.png,a red circle\nb.png,a large red circle, drawn by hand\n")
    ex = read_examples(tmp_path)
    assert [e.text for e in ex.items] == ["a red circle"]
    (where, why), = ex.skipped
    assert where == "captions.csv line 3" and "'drawn by hand' would be lost" in why
    assert why.endswith("quote the caption, or use ; or a tab as the separator")
    # an empty last column (a spreadsheet's trailing comma) loses nothing; a value under it would be lost
    _csv(tmp_path, "image,caption,\na.png,a red circle,\nb.png,a blue one,by hand\n")
    ex = read_examples(tmp_path)
    assert [e.text for e in ex.items] == ["a red circle"] and "'by hand' would be lost" in ex.skipped[0][1]
    (tmp_path / "captions.csv").unlink()
    _csv(tmp_path, "image,question,answer\na.png,what is it?,a circle\nb.png,what is it, really?,a square\n", "qa.csv")
    ex = read_examples(tmp_path, kind="qa")
    assert [e.answer for e in ex.items] == ["a circle"]
    assert ex.skipped[0][0] == "qa.csv line 3" and "quote the question or answer" in ex.skipped[0][1]


def test_a_quote_never_closed_does_not_take_in_the_rows_after_it(tmp_path):
    _pictures(tmp_path, "a.png", "b.png", "c.png")
    _csv(tmp_path, 'image,caption\na.png,a red circle\nb.png,"a blue square\nc.png,a green triangle\n')
    ex = read_examples(tmp_path / "captions.csv")
    assert [e.text for e in ex.items] == ["a red circle"]  # not 'a blue square c.png,a green triangle'
    (where, why), = ex.skipped
    assert where == "captions.csv line 3" and "takes in 'c.png,a green triangle'" in why and "close the quote" in why
    _csv(tmp_path, 'image,caption\na.png,"a red circle,\ndrawn by hand"\n')  # a line break in a caption is fine
    assert [e.text for e in read_examples(tmp_path).items] == ["a red circle, drawn by hand"]


def test_a_needed_column_named_twice_is_an_error(tmp_path):
    _pictures(tmp_path, "a.png")
    _csv(tmp_path, "image,caption,caption\na.png,a red circle,a round red thing\n")
    with pytest.raises(mmkit.InputError, match=r"names the column 'caption' 2 times.*keep one 'caption' column"):
        read_examples(tmp_path)


def test_rows_are_reported_on_the_line_they_start(tmp_path):
    _pictures(tmp_path, "a.png", "b.png", "c.png")
    _csv(tmp_path, 'image,caption\r\na.png,a circle\r\n\r\n\r\nb.png,"a large purple\r\nsquare"\r\n'
         'c.png,a red triangle\r\nmissing.png,a red circle\r\n')
    ex = read_examples(tmp_path)
    assert [e.source for e in ex.items] == ["captions.csv line 2", "captions.csv line 5", "captions.csv line 7"]
    assert ex.items[1].text == "a large purple square"
    assert [w for w, _ in ex.skipped] == ["captions.csv line 8"]


def test_image_values_with_spaces_backslashes_or_another_normalisation_read_their_file(tmp_path):
    nfd = unicodedata.normalize("NFD", "café.png")  # as a Mac writes the name
    _pictures(tmp_path, "a.png", "sub/b.png", nfd)
    nfc = unicodedata.normalize("NFC", "café.png")  # as the CSV spells it
    _csv(tmp_path, f"image,caption\n a.png ,a red circle\nsub\\b.png,a blue square\n{nfc},a green triangle\n"
         "./a.png,a red circle\n")
    ex = read_examples(tmp_path)
    assert [e.text for e in ex.items] == ["a red circle", "a blue square", "a green triangle"]
    assert [w for w, why in ex.skipped] == ["captions.csv line 5"] and "duplicate" in ex.skipped[0][1]  # ./a.png


def test_a_missing_picture_names_its_likely_cause(tmp_path):
    _pictures(tmp_path, "a.png", "b.png")
    _csv(tmp_path, "image,caption\na.png,a red circle\nB.PNG,a blue square\nhttps://example.com/cat.jpg,a cat\n")
    why = dict(read_examples(tmp_path).skipped)
    if not os.path.exists(tmp_path / "B.PNG"):  # a case-sensitive file system
        assert "no such file; did you mean 'b.png'?" in why["captions.csv line 3"]
    assert "is a URL; mmkit does not download images. Download it first and pass the file path" in why["captions.csv line 4"]
    assert "example.com/cat.jpg'" in why["captions.csv line 4"] and str(tmp_path) not in why["captions.csv line 4"]


@pytest.mark.parametrize("head, sep", [("image;caption", ","), ("image,caption", ";")])
def test_rows_separated_by_another_separator_than_the_header_are_named(tmp_path, head, sep):
    _pictures(tmp_path, "a.png")
    _csv(tmp_path, f"{head}\na.png{sep}a red circle\n")
    with pytest.raises(mmkit.InputError, match=f"line 2: this row is separated by '{sep}' but the header line by"):
        read_examples(tmp_path)


def test_a_coco_file_away_from_its_pictures_names_image_dir(tmp_path):
    _pictures(tmp_path / "pics", "a.png", "b.png")
    coco = {"images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}],
            "annotations": [{"id": 1, "image_id": 1, "caption": "a red circle"},
                            {"id": 2, "image_id": 2, "caption": "a blue square"}]}
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "ann.json").write_text(json.dumps(coco))
    with pytest.raises(mmkit.InputError, match=r"2 of its 2 pictures are not found: their file names are read "
                                               r"relative to the COCO file's folder .*pass image_dir="):
        read_examples(tmp_path / "elsewhere" / "ann.json")
    assert len(read_examples(tmp_path / "elsewhere" / "ann.json", image_dir=tmp_path / "pics")) == 2
    (tmp_path / "pics" / "ann.json").write_text(json.dumps(coco))
    (tmp_path / "pics" / "b.png").unlink()  # one of two gone: a bad row, not the wrong folder
    assert "image_dir" not in read_examples(tmp_path / "pics" / "ann.json").origin


def test_a_picture_passed_as_the_data_says_what_the_data_may_be(tmp_path):
    _pictures(tmp_path, "red_circle.png")
    with pytest.raises(mmkit.InputError, match=r"'.*red_circle.png' is a picture, not training data; pass a folder "
                                               r"with captions.csv.*COCO caption JSON"):
        read_examples(tmp_path / "red_circle.png")
    (tmp_path / "red_circle.png").rename(tmp_path / "captions.csv")  # a picture under a CSV's name
    with pytest.raises(mmkit.InputError, match="is a picture, not training data"):
        read_examples(tmp_path)


def test_excel_files_are_read_as_saved(tmp_path):
    """Excel writes a 'sep=;' first line (some locales), UTF-16 for 'Unicode text', and Windows keeps a name's case."""
    _pictures(tmp_path, "a.png", "b.png")
    _csv(tmp_path, "sep=;\r\nimage;caption\r\na.png;a red circle, small\r\nb.png;a blue square;by hand\r\n")
    ex = read_examples(tmp_path)
    assert [e.text for e in ex.items] == ["a red circle, small"]
    assert ex.skipped[0][0] == "captions.csv line 4"  # lines counted from the file's first, the sep= line
    (tmp_path / "captions.csv").write_bytes("image\tcaption\r\na.png\tun cercle rouge\r\n".encode("utf-16"))
    assert [e.text for e in read_examples(tmp_path).items] == ["un cercle rouge"]
    (tmp_path / "captions.csv").write_bytes("image,caption\na.png,a red circle\n".encode("utf-16-le"))  # no BOM
    with pytest.raises(mmkit.InputError, match="not UTF-8 text \\(it looks like UTF-16 text without its byte-order "
                                               "mark\\); save the CSV as UTF-8"):
        read_examples(tmp_path)
    (tmp_path / "captions.csv").rename(tmp_path / "Captions.CSV")
    _csv(tmp_path, "image,caption\nb.png,a blue square\n", "Captions.CSV")
    ex = read_examples(tmp_path)
    assert [e.text for e in ex.items] == ["a blue square"] and ex.origin.endswith("Captions.CSV")


def test_a_missing_picture_names_the_file_meant_without_its_extension_or_in_a_sub_folder(tmp_path):
    _pictures(tmp_path, "img_00.png", "pics/b.png", "c.png", "c.jpg")
    _csv(tmp_path, "image,caption\nimg_00,a red circle\nb.png,a blue square\nc,a green one\n")
    with pytest.raises(mmkit.InputError) as e:
        read_examples(tmp_path)
    assert "did you mean 'img_00.png'? (write the file's extension too)" in str(e.value)
    _csv(tmp_path, "image,caption\nimg_00.png,a red circle\nb.png,a blue square\nc,a green one\n")
    why = dict(read_examples(tmp_path).skipped)
    assert "did you mean 'pics/b.png'? (image paths are relative to" in why["captions.csv line 3"]
    assert "did you mean" not in why["captions.csv line 4"]  # c.png or c.jpg: no one file is meant
