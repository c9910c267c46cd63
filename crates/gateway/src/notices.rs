//! The gateway's own lines for the user, queued while the client is busy with console output.
//!
//! Invariant: the queue is bounded whatever the console does. Status notices coalesce while
//! the user is not reading: a newer restart notice replaces a queued one, and a loss followed by
//! a recovery that were both never delivered cancel out. Other texts (help, warnings) are
//! dropped beyond [`MAX_QUEUED`].

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::messages;

/// Queued texts kept at most (a user asking for help in a loop cannot grow the queue).
pub(crate) const MAX_QUEUED: usize = 32;

/// One line for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notice {
    /// A fixed or formatted text.
    Text(Bytes),
    /// The console connection is lost (the text says why: lost, or instance stopped).
    Lost(&'static str),
    /// The console connection is back.
    Back,
    /// The console command exited and is started again after this delay.
    Restart(Duration),
}

impl Notice {
    pub(crate) fn text(s: &'static str) -> Self {
        Notice::Text(Bytes::from_static(s.as_bytes()))
    }

    fn render(self) -> Bytes {
        match self {
            Notice::Text(b) => b,
            Notice::Lost(text) => Bytes::from_static(text.as_bytes()),
            Notice::Back => Bytes::from_static(messages::CONSOLE_BACK.as_bytes()),
            Notice::Restart(delay) => Bytes::from(messages::command_restarting(delay)),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Notices {
    queue: VecDeque<Notice>,
}

impl Notices {
    pub(crate) fn push(&mut self, notice: Notice) {
        match (&notice, self.queue.back()) {
            // The user never saw the loss: there is nothing to take back.
            (Notice::Back, Some(Notice::Lost(_))) | (Notice::Lost(_), Some(Notice::Back)) => {
                self.queue.pop_back();
                return;
            }
            (Notice::Lost(_), Some(Notice::Lost(_))) => return,
            _ => {}
        }
        if matches!(notice, Notice::Restart(_)) {
            self.queue.retain(|n| !matches!(n, Notice::Restart(_)));
        }
        if self.queue.len() >= MAX_QUEUED {
            return;
        }
        self.queue.push_back(notice);
    }

    /// The next text to send.
    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        self.queue.pop_front().map(Notice::render)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn restart_notices_coalesce_while_unread() {
        let mut n = Notices::default();
        for i in 1..=1000 {
            n.push(Notice::Restart(i * MS));
        }
        assert_eq!(n.len(), 1);
        let text = String::from_utf8(n.pop().unwrap().to_vec()).unwrap();
        assert!(text.contains("restarting in 1 s"), "{text}");
        assert!(n.pop().is_none());
    }

    #[test]
    fn an_unseen_loss_and_recovery_cancel_out() {
        let mut n = Notices::default();
        for _ in 0..1000 {
            n.push(Notice::Lost(messages::CONSOLE_LOST));
            n.push(Notice::Back);
        }
        assert_eq!(n.len(), 0);
        n.push(Notice::Lost(messages::CONSOLE_LOST));
        n.push(Notice::Lost(messages::CONSOLE_LOST));
        assert_eq!(n.len(), 1);
    }

    #[test]
    fn other_texts_are_bounded_and_keep_their_order() {
        let mut n = Notices::default();
        n.push(Notice::text(messages::NO_BREAK));
        n.push(Notice::Restart(100 * MS));
        n.push(Notice::text(messages::SHUTDOWN));
        n.push(Notice::Restart(200 * MS));
        assert_eq!(n.pop().unwrap(), messages::NO_BREAK.as_bytes());
        assert_eq!(n.pop().unwrap(), messages::SHUTDOWN.as_bytes());
        assert!(
            String::from_utf8(n.pop().unwrap().to_vec())
                .unwrap()
                .contains("restarting in 0.2 s")
        );
        for _ in 0..1000 {
            n.push(Notice::text(messages::NO_BREAK));
        }
        assert_eq!(n.len(), MAX_QUEUED);
    }
}
