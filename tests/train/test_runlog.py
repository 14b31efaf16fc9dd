"""sureid.train.runlog: log.csv grows its header, survives a new process and drops the rows a
resumed stage redoes."""

from sureid.train import RunLog

from .runs import read_rows


def test_run_log_drops_rows_a_resumed_stage_redoes(tmp_path):
    log = RunLog(tmp_path, tensorboard=False, log=print)
    for step in (1, 2, 3):
        log.write({"stage": "teacher", "kind": "step", "epoch": 1, "step": step, "total": 1.0})
    log.write({"stage": "student", "kind": "step", "epoch": 1, "step": 1, "total": 2.0,
               "kd": 0.5})
    log = RunLog(tmp_path, tensorboard=False, log=print)  # a new process reads the file
    assert log.columns == ["stage", "kind", "epoch", "step", "total", "kd"]
    log.start("teacher", 2)
    log.start("student", 0)
    assert [(r["stage"], r["step"]) for r in read_rows(tmp_path)] == [("teacher", "1"),
                                                                  ("teacher", "2")]


def test_new_columns_rewrite_the_header_and_floats_are_short(tmp_path):
    log = RunLog(tmp_path, tensorboard=False, log=print)
    log.write({"stage": "student", "kind": "step", "epoch": 1, "step": 1, "total": 1 / 3})
    log.write({"stage": "student", "kind": "epoch", "epoch": 1, "step": 1, "mAP": 12.5})
    assert (tmp_path / "log.csv").read_bytes() == (
        b"stage,kind,epoch,step,total,mAP\r\n"
        b"student,step,1,1,0.333333,\r\n"
        b"student,epoch,1,1,,12.5\r\n")
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]  # no temporary file left
