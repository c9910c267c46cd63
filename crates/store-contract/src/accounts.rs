//! The account switch property, through the domain service as `push_serial_key` reads it.

use std::sync::Arc;
use std::time::Duration;

use console::{Account, AccountId, ConsoleService, Registry, Settings, ThrottleConfig};

use crate::Backend;

/// A switch set at run time is read back for that account only; an account never set reads
/// its configured value.
pub async fn accounts_switch_is_shared_and_falls_back_to_config(b: &impl Backend) {
    let on = AccountId::parse("900000000101").unwrap();
    let off = AccountId::parse("900000000102").unwrap();
    let mut registry = Registry::new();
    registry.add_account(Account::new(on.clone(), true));
    registry.add_account(Account::new(off.clone(), false));
    let registry = Arc::new(registry);
    let store = b.accounts(Arc::clone(&registry));
    // Two services on one store, as two nodes would be.
    let node = |store| {
        let mut r = Registry::new();
        r.add_account(Account::new(on.clone(), true));
        r.add_account(Account::new(off.clone(), false));
        let settings = Settings {
            teardown: Duration::from_secs(30),
            ..Settings::default()
        };
        ConsoleService::new(r, settings, ThrottleConfig::default()).with_accounts(store)
    };
    let (a, b2) = (node(Arc::clone(&store)), node(Arc::clone(&store)));
    assert!(a.serial_console_access(&on).await.unwrap());
    assert!(!a.serial_console_access(&off).await.unwrap());

    a.set_serial_console_access(&off, true).await.unwrap();
    a.set_serial_console_access(&on, false).await.unwrap();
    for n in [&a, &b2] {
        assert!(n.serial_console_access(&off).await.unwrap());
        assert!(!n.serial_console_access(&on).await.unwrap());
    }
    assert_eq!(store.serial_console_access(&off).await.unwrap(), Some(true));
    assert_eq!(store.serial_console_access(&on).await.unwrap(), Some(false));
}
