"""Running a recipe: build the stages (:mod:`.build`), train them (:mod:`.train`) with their
schedules and evaluation, on one process or under torchrun (:mod:`.distributed`), into a run
folder that :class:`.folder.Run` owns (creation rules in :mod:`.create`, its lock in
:mod:`.lock`, atomic writes in :mod:`.files` and :mod:`.checkpoint`), and open it again for
use (:meth:`.folder.Run.load`)."""
