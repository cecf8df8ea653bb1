//! Hostile images: 100,000 damaged, cut and zeroed images checked on worker threads, none
//! panicking, writing, or taking long.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::BLOCK;
use super::agreement::{Layout, layout, mutate};
use super::{fill_with_mtools, fill_with_volume, mkfs};
use crate::tests::SplitMix;
use crate::tests::fuzz::{Damage, catch_quietly, on_worker};
use crate::{Disk, DiskError, check};

/// A sound image and where its metadata lies, shared by the fuzz cases.
struct HostileBase {
    image: Arc<Vec<u8>>,
    layout: Layout,
}

/// A disk that reads the base image through a case's damage, and fails the test on a write.
struct DamagedDisk<'a> {
    base: &'a [u8],
    damage: &'a Damage,
}

impl Disk for DamagedDisk<'_> {
    fn block_size(&self) -> usize {
        BLOCK
    }
    fn blocks(&self) -> u64 {
        self.damage.blocks()
    }
    fn read(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.damage.read(self.base, first, buf)
    }
    fn write(&mut self, _: u64, _: &[u8]) -> Result<(), DiskError> {
        panic!("the check wrote to the disk")
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        panic!("the check flushed the disk")
    }
}

/// The damage of fuzz case `case`: changes made by [`mutate`] (boot sector, FAT and directory
/// bytes), sometimes the image cut short or a stretch of it zeroed as well. `scratch` holds a
/// copy of the base image and is left so.
fn hostile_damage(base: &HostileBase, scratch: &mut [u8], case: u64) -> Damage {
    let mut rng = SplitMix(case.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xDA3A9E);
    let image = &base.image;
    let mut damage = Damage { len: image.len(), ..Damage::default() };
    for _ in 0..1 + rng.below(3) {
        let boot = rng.below(3) == 0;
        mutate(scratch, &base.layout, &mut rng, boot);
    }
    // `mutate` writes only into these regions (a FAT12 entry up to a byte past one's end).
    let regions = base.layout.boot.iter().chain(&base.layout.fat).chain(&base.layout.dirs);
    for r in regions {
        let r = r.start..(r.end + 2).min(image.len());
        for (i, (new, old)) in scratch[r.clone()].chunks_mut(64).zip(image[r.clone()].chunks(64)).enumerate() {
            if new == old {
                continue;
            }
            for (j, (n, o)) in new.iter_mut().zip(old).enumerate() {
                if n != o {
                    damage.patches.push((r.start + i * 64 + j, *n));
                    *n = *o;
                }
            }
        }
    }
    match rng.below(6) {
        0 => damage.len = BLOCK * rng.below((image.len() / BLOCK) as u64) as usize,
        1 => {
            let start = rng.below(image.len() as u64) as usize;
            damage.zeroed = start..(start + 1 + rng.below(16384) as usize).min(image.len());
        }
        _ => {}
    }
    damage
}

/// What a fuzz run found.
#[derive(Default)]
struct FuzzRun {
    verdicts: [u64; 3],
    problems: u64,
    slowest: (Duration, u64),
    panics: Vec<String>,
}

/// Cases of one fuzz run.
const CASES: u64 = 25_000;

/// Longest one case may take (in a debug build).
const CASE_LIMIT: Duration = Duration::from_secs(2);

/// Checks [`CASES`] damaged copies of `make()`'s image (cases `first..first + CASES`) on a
/// worker thread: none may panic, write, or take longer than [`CASE_LIMIT`], and the run must
/// end within 300 s.
fn fuzz(name: &'static str, make: fn() -> Vec<u8>, first: u64) {
    let started = Instant::now();
    let run = on_worker(name, format!("check-fuzz-{name}"), move |progress| {
        let image = make();
        let base = HostileBase { layout: layout(&image), image: Arc::new(image) };
        let mut scratch = base.image.to_vec();
        let mut run = FuzzRun::default();
        for case in first..first + CASES {
            progress.store(case, Ordering::Relaxed);
            let damage = hostile_damage(&base, &mut scratch, case);
            let t = Instant::now();
            let outcome = catch_quietly(|| check(&mut DamagedDisk { base: &base.image, damage: &damage }));
            let took = t.elapsed();
            run.slowest = run.slowest.max((took, case));
            match outcome {
                Ok(Ok(report)) => {
                    run.verdicts[report.verdict() as usize] += 1;
                    run.problems += report.problems.len() as u64;
                    // The report prints without panicking too (checked on some cases: it is slow
                    // in a debug build).
                    if case % 8 == 0 {
                        let _ = report.to_string();
                    }
                }
                Ok(Err(e)) => run.panics.push(format!("case {case}: a disk error from a disk that has none: {e}")),
                Err(message) => run.panics.push(format!("case {case} ({damage:?}): {message}")),
            }
        }
        run
    });
    eprintln!(
        "{name}: {CASES} damaged images in {:.1?}: {:?} clean/leftovers/damaged, {} problems, slowest case {} ({:.1?})",
        started.elapsed(),
        run.verdicts,
        run.problems,
        run.slowest.1,
        run.slowest.0
    );
    assert!(
        run.panics.is_empty(),
        "{name}: {} of {CASES} cases failed; the first:\n{}",
        run.panics.len(),
        run.panics.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(run.slowest.0 < CASE_LIMIT, "{name}: case {} took {:?}", run.slowest.1, run.slowest.0);
    assert!(run.verdicts.iter().all(|&n| n > CASES / 100), "{name}: too few of some verdict: {:?}", run.verdicts);
}

fn fat12_floppy() -> Vec<u8> {
    fill_with_mtools(mkfs("12", "1", "1440", &[]), Some("FLOPPY"))
}

fn fat16_small() -> Vec<u8> {
    let mut vol = crate::tests::mount(mkfs("16", "2", "8192", &["-n", "SMALL"]), 256);
    fill_with_volume(&mut vol);
    vol.unmount().expect("unmount").into_disk().expect("disk").into_bytes()
}

#[test]
fn hostile_fat12_images_a() {
    fuzz("fat12-a", fat12_floppy, 0);
}

#[test]
fn hostile_fat12_images_b() {
    fuzz("fat12-b", fat12_floppy, CASES);
}

#[test]
fn hostile_fat16_images_a() {
    fuzz("fat16-a", fat16_small, 0);
}

#[test]
fn hostile_fat16_images_b() {
    fuzz("fat16-b", fat16_small, CASES);
}
