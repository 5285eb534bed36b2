//! The instance-type catalog (seed `001`): names, CPU architecture and CPU cores.
//! The catalog and the default type are configuration; `Catalog::seed()` is the documented one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// The architecture this binary was built for, in OCI/Go naming.
    pub fn native() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::Amd64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceType {
    pub name: String,
    pub arch: Arch,
    /// CPU cores, e.g. `0.5`.
    pub cpu_cores: f64,
}

impl InstanceType {
    /// CPU in thousandths of a core, the unit placement and cgroups work in.
    pub fn cpu_millis(&self) -> u32 {
        (self.cpu_cores * 1000.0).round() as u32
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub default_instance_type: String,
    pub instance_types: Vec<InstanceType>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the catalog has no instance types")]
    Empty,
    #[error("default instance type {0:?} is not in the catalog")]
    UnknownDefault(String),
    #[error("instance type {0:?} appears twice")]
    Duplicate(String),
    #[error("instance type {name:?} has cpu_cores {cores}; it must be between 0.1 and 256")]
    BadCpu { name: String, cores: f64 },
}

impl Catalog {
    /// The catalog of seed `001`: nano/micro/mini on arm64, tiny/small/medium on amd64.
    pub fn seed() -> Catalog {
        let t = |name: &str, arch, cpu_cores| InstanceType {
            name: name.into(),
            arch,
            cpu_cores,
        };
        Catalog {
            default_instance_type: "nano".into(),
            instance_types: vec![
                t("nano", Arch::Arm64, 0.5),
                t("micro", Arch::Arm64, 1.0),
                t("mini", Arch::Arm64, 2.0),
                t("tiny", Arch::Amd64, 1.0),
                t("small", Arch::Amd64, 2.0),
                t("medium", Arch::Amd64, 4.0),
            ],
        }
    }

    pub fn get(&self, name: &str) -> Option<&InstanceType> {
        self.instance_types.iter().find(|t| t.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.instance_types
            .iter()
            .map(|t| t.name.as_str())
            .collect()
    }

    pub fn validate(&self) -> Result<(), CatalogError> {
        if self.instance_types.is_empty() {
            return Err(CatalogError::Empty);
        }
        for (i, t) in self.instance_types.iter().enumerate() {
            if self.instance_types[..i].iter().any(|o| o.name == t.name) {
                return Err(CatalogError::Duplicate(t.name.clone()));
            }
            if !(0.1..=256.0).contains(&t.cpu_cores) {
                return Err(CatalogError::BadCpu {
                    name: t.name.clone(),
                    cores: t.cpu_cores,
                });
            }
        }
        if self.get(&self.default_instance_type).is_none() {
            return Err(CatalogError::UnknownDefault(
                self.default_instance_type.clone(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_catalog_matches_the_documented_table() {
        let c = Catalog::seed();
        c.validate().expect("seed catalog is valid");
        assert_eq!(c.default_instance_type, "nano");
        let nano = c.get("nano").expect("nano");
        assert_eq!((nano.arch, nano.cpu_millis()), (Arch::Arm64, 500));
        let medium = c.get("medium").expect("medium");
        assert_eq!((medium.arch, medium.cpu_millis()), (Arch::Amd64, 4000));
    }

    #[test]
    fn rejects_unknown_default() {
        let mut c = Catalog::seed();
        c.default_instance_type = "huge".into();
        assert!(matches!(c.validate(), Err(CatalogError::UnknownDefault(_))));
    }
}
