//! The coordinator's services, wired once at start and shared by the API: each owns its own
//! data and job (the fleet, the containers service, keys, streams into containers); this is
//! only the handle the API holds, with no behaviour of its own.

use crate::auth::Authenticator;
use crate::config::Config;
use crate::containers::Containers;
use crate::fleet::Fleet;
use crate::idempotency::Idempotency;
use crate::inside::Inside;
use crate::keys::Keys;
use crate::leader::Leadership;
use crate::ratelimit::RateLimiter;
use crate::store::Store;
use crate::telemetry::Telemetry;
use std::sync::Arc;

pub struct Services {
    pub config: Config,
    pub auth: Authenticator,
    pub store: Arc<dyn Store>,
    pub fleet: Arc<Fleet>,
    pub containers: Arc<Containers>,
    pub keys: Keys,
    pub inside: Inside,
    pub telemetry: Telemetry,
    pub limiter: RateLimiter,
    pub idempotency: Arc<Idempotency>,
    pub leadership: Arc<Leadership>,
}
