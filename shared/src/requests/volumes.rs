//! Volume bodies: create, PATCH (rename, grow), attach; and the `volumes` / `volume_ids`
//! fields of a container's create body.

use super::{AttachBody, Check, Input, Validate, VolumeBody, VolumePatchBody, STRING, UINT};
use crate::validation;
use crate::volumes::{is_volume_id, VolumeRef};

/// Volume sizes the configuration allows (GiB).
#[derive(Debug, Clone, Copy)]
pub struct VolumeLimits {
    pub size_gb: (u64, u64),
}

/// `POST /compute/volumes`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVolume {
    pub name: String,
    pub size_gb: u64,
    pub region: Option<String>,
    pub host_key: Option<String>,
}

/// A validated volume PATCH: only what was given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumePatch {
    pub name: Option<String>,
    pub size_gb: Option<u64>,
}

/// A volume name: as a container name.
fn name(c: &mut Check, input: Input<String>, required: bool) -> Option<String> {
    let name = if required {
        c.required("name", input, STRING)
    } else {
        c.optional("name", input, STRING)
    };
    if let Some(Err(m)) = name.as_deref().map(validation::check_name) {
        c.errors.add("name", m);
    }
    name
}

impl Validate for VolumeBody {
    type Valid = NewVolume;
    type Context<'a> = VolumeLimits;

    fn check(self, l: &VolumeLimits, c: &mut Check) -> Option<NewVolume> {
        let name = name(c, self.name, true);
        let size_gb = c.required("size_gb", self.size_gb, UINT);
        c.range("size_gb", size_gb, l.size_gb);
        let (region, host_key) = c.placement(self.region, self.host_key);
        Some(NewVolume {
            name: name?,
            size_gb: size_gb?,
            region,
            host_key,
        })
    }
}

impl Validate for VolumePatchBody {
    type Valid = VolumePatch;
    /// The limits, and the volume's size now (it grows, never shrinks).
    type Context<'a> = (VolumeLimits, u64);

    fn check(self, (l, now): &(VolumeLimits, u64), c: &mut Check) -> Option<VolumePatch> {
        let name = name(c, self.name, false);
        let size_gb = c.optional("size_gb", self.size_gb, UINT);
        if name.is_none() && size_gb.is_none() && c.errors.is_empty() {
            c.errors
                .add("body", "nothing to change: give name or size_gb");
        }
        c.range("size_gb", size_gb, l.size_gb);
        if size_gb.is_some_and(|s| s < *now) {
            c.errors.add(
                "size_gb",
                format!("a volume grows and never shrinks: it is {now} GB"),
            );
        }
        Some(VolumePatch { name, size_gb })
    }
}

/// A volume id and mount path, from `field` (`volume_id`, `volumes[0].volume_id`, …).
fn volume_ref(
    c: &mut Check,
    field: &str,
    id: Option<String>,
    path: Option<String>,
) -> Option<VolumeRef> {
    if let Some(id) = &id {
        if !is_volume_id(id) {
            c.errors
                .add(&format!("{field}volume_id"), "is not a volume id");
        }
    }
    if let Some(Err(m)) = path.as_deref().map(validation::check_mount_path) {
        c.errors.add(&format!("{field}mount_path"), m);
    }
    Some(VolumeRef {
        volume_id: id?,
        mount_path: path?,
    })
}

impl Validate for AttachBody {
    type Valid = VolumeRef;
    type Context<'a> = ();

    fn check(self, _: &(), c: &mut Check) -> Option<VolumeRef> {
        let id = c.required("volume_id", self.volume_id, STRING);
        let path = c.required("mount_path", self.mount_path, STRING);
        volume_ref(c, "", id, path)
    }
}

/// The most volumes one container mounts.
pub const MAX_CONTAINER_VOLUMES: usize = 8;

/// A create body's `volumes`: `[{"volume_id":…, "mount_path":…}]`, none twice, no path
/// inside another or inside one of `mount_paths`.
pub(super) fn volumes(
    c: &mut Check,
    v: serde_json::Value,
    mount_paths: &[String],
) -> Vec<VolumeRef> {
    let Some(items) = v.as_array() else {
        c.errors
            .add("volumes", "must be a list of {volume_id, mount_path}");
        return Vec::new();
    };
    if items.len() > MAX_CONTAINER_VOLUMES {
        c.errors.add(
            "volumes",
            format!("at most {MAX_CONTAINER_VOLUMES} volumes"),
        );
    }
    let mut out: Vec<VolumeRef> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("volumes[{i}].");
        let get = |k: &str| item.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let (id, path) = (get("volume_id"), get("mount_path"));
        if id.is_none() {
            c.errors
                .add(&format!("{field}volume_id"), "is required (a string)");
        }
        if path.is_none() {
            c.errors
                .add(&format!("{field}mount_path"), "is required (a string)");
        }
        if let Some(r) = volume_ref(c, &field, id, path) {
            if out.iter().any(|o| o.volume_id == r.volume_id) {
                c.errors
                    .add(&format!("{field}volume_id"), "is listed twice");
            }
            out.push(r);
        }
    }
    check_paths(c, "volumes", &out, mount_paths);
    out
}

/// No volume's mount path is another's, a mount path's, or inside (or around) either.
pub fn check_paths(c: &mut Check, field: &str, vols: &[VolumeRef], mount_paths: &[String]) {
    let nested = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
    };
    for (i, v) in vols.iter().enumerate() {
        let p = v.mount_path.as_str();
        if let Some(o) = mount_paths.iter().find(|m| nested(p, m)) {
            c.errors
                .add(field, format!("{p:?} overlaps the mount path {o:?}"));
        }
        if let Some(o) = vols[..i].iter().find(|o| nested(p, &o.mount_path)) {
            c.errors.add(
                field,
                format!("{p:?} overlaps {:?}, another volume's", o.mount_path),
            );
        }
    }
}

/// A create body's `volume_ids` (seed `004`): each mounted at `/mnt/<volume name>`.
pub(super) fn volume_ids(c: &mut Check, ids: Vec<String>) -> Vec<String> {
    if ids.len() > MAX_CONTAINER_VOLUMES {
        c.errors.add(
            "volume_ids",
            format!("at most {MAX_CONTAINER_VOLUMES} volumes"),
        );
    }
    for (i, id) in ids.iter().enumerate() {
        if !is_volume_id(id) {
            c.errors
                .add("volume_ids", format!("{id:?} is not a volume id"));
        } else if ids[..i].contains(id) {
            c.errors
                .add("volume_ids", format!("{id:?} is listed twice"));
        }
    }
    ids
}
