//! OpenSSH's SFTP extensions the server offers: `posix-rename@openssh.com` (a rename that
//! replaces), `hardlink@openssh.com` and `fsync@openssh.com`; their arguments are SSH strings.

use russh_sftp::protocol::StatusCode;
use russh_sftp::server::StatusReply;

/// The extensions, as announced in the version packet.
pub const OFFERED: [&str; 3] = [
    "posix-rename@openssh.com",
    "hardlink@openssh.com",
    "fsync@openssh.com",
];

/// An extension request, its arguments read.
#[derive(Debug, PartialEq, Eq)]
pub enum Extension {
    /// A rename that replaces the target.
    PosixRename {
        from: String,
        to: String,
    },
    Hardlink {
        target: String,
        link: String,
    },
    Fsync {
        handle: String,
    },
}

/// Reads extension `request` with its `data`; one this server does not offer is unsupported.
pub fn parse(request: &str, data: &[u8]) -> Result<Extension, StatusReply> {
    let args = strings(data).ok_or_else(|| StatusReply::new(StatusCode::BadMessage))?;
    let mut args = args.into_iter();
    let mut arg = || args.next().unwrap_or_default();
    Ok(match request {
        "posix-rename@openssh.com" => Extension::PosixRename {
            from: arg(),
            to: arg(),
        },
        "hardlink@openssh.com" => Extension::Hardlink {
            target: arg(),
            link: arg(),
        },
        "fsync@openssh.com" => Extension::Fsync { handle: arg() },
        _ => return Err(StatusReply::new(StatusCode::OpUnsupported)),
    })
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
        assert_eq!(
            super::parse("fsync@openssh.com", &[&[0, 0, 0, 1][..], b"7"].concat()),
            Ok(super::Extension::Fsync { handle: "7".into() })
        );
        assert!(super::parse("statvfs@openssh.com", &[]).is_err());
    }
}
