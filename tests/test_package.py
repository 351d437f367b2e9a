import os

from captcha_nb import PROJECT_ROOT, project_relative


def test_paths_near_the_project_are_recorded_relative_to_it():
    assert project_relative(PROJECT_ROOT / "data" / "x") == os.path.join("data", "x")
    # The shared data sits beside the project on every machine, so it is named the same way everywhere.
    assert project_relative(PROJECT_ROOT.parent / "shared" / "data") == os.path.join("..", "shared", "data")


def test_paths_far_from_the_project_stay_absolute():
    far = PROJECT_ROOT.anchor + "captcha-nb-elsewhere"
    assert project_relative(far) == far
