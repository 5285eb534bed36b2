//! OpenSSH's SFTP extensions the server offers: `posix-rename@openssh.com` (a rename that
//! replaces), `hardlink@openssh.com` and `fsync@openssh.com`; their arguments are SSH strings.

use crate::handler::{failed, status, Sftp};
use russh_sftp::protocol::{Packet, StatusCode};
use russh_sftp::server::StatusReply;

/// The extensions, as announced in the version packet.
pub const OFFERED: [&str; 3] = [
    "posix-rename@openssh.com",
    "hardlink@openssh.com",
    "fsync@openssh.com",
];

impl Sftp {
    /// OpenSSH's extensions; their arguments are SSH strings.
    pub(crate) fn extension(
        &mut self,
        id: u32,
        request: &str,
        data: &[u8],
    ) -> Result<Packet, StatusReply> {
        let args = strings(data).ok_or_else(|| StatusReply::new(StatusCode::BadMessage))?;
        let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
        match request {
            "posix-rename@openssh.com" => Ok(self.rename_over(id, arg(0), arg(1))?.into()),
            "hardlink@openssh.com" => {
                std::fs::hard_link(self.path(arg(0)), self.path(arg(1))).map_err(failed)?;
                Ok(status(id).into())
            }
            "fsync@openssh.com" => {
                self.file(arg(0))?.1.sync_all().map_err(failed)?;
                Ok(status(id).into())
            }
            _ => Err(StatusReply::new(StatusCode::OpUnsupported)),
        }
    }
}

/// The SSH strings (u32 length, bytes) that make up `data`.
fn strings(mut data: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let (len, rest) = data.split_at(4);
        let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
        let s = rest.get(..len)?;
        out.push(String::from_utf8_lossy(s).into_owned());
        data = &rest[len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn extension_arguments_are_ssh_strings() {
        let data = [&[0, 0, 0, 1][..], b"a", &[0, 0, 0, 2], b"bc"].concat();
        assert_eq!(
            super::strings(&data),
            Some(vec!["a".to_string(), "bc".to_string()])
        );
        assert_eq!(super::strings(&[0, 0, 0, 9, 1]), None);
    }
}
