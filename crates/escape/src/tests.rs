use super::*;

const CPR: &[u8] = b"\x1b[24;1R";

/// Every reply and marker the parser lets the line start survive.
const REPLIES: [&[u8]; 7] = [
    CPR,
    b"\x1b[?24;1;1R",
    b"\x1b[I",
    b"\x1b[O",
    b"\x1b[200~",
    b"\x1b[201~",
    b"\x1b[?62;22c",
];

/// Feeds `chunks` in order and merges adjacent data, so results compare easily.
fn run(p: &mut Parser, chunks: &[&[u8]]) -> Vec<Event> {
    let mut merged: Vec<Event> = Vec::new();
    for event in chunks.iter().flat_map(|c| p.feed(c)) {
        match (merged.last_mut(), event) {
            (Some(Event::Data(prev)), Event::Data(d)) => prev.extend_from_slice(&d),
            (_, e) => merged.push(e),
        }
    }
    merged
}

/// What `input` gives with escape `~`, after checking that cutting it at any byte, or feeding
/// it a byte at a time, gives the same.
fn parse(doubled: Doubled, input: &[u8]) -> Vec<Event> {
    let whole = run(&mut Parser::new(Some(b'~'), doubled), &[input]);
    for cut in 0..=input.len() {
        let (a, b) = input.split_at(cut);
        let split = run(&mut Parser::new(Some(b'~'), doubled), &[a, b]);
        assert_eq!(split, whole, "cut at {cut} of {:?}", show(input));
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&mut Parser::new(Some(b'~'), doubled), &bytes), whole);
    whole
}

fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

fn d(s: &[u8]) -> Event {
    Event::Data(s.to_vec())
}

fn cmd(c: Command) -> Event {
    Event::Command(c)
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

const BOTH: [Doubled; 2] = [Doubled::Literal, Doubled::CommandFirst];

#[test]
fn commands_after_a_newline_and_at_the_start() {
    for doubled in BOTH {
        assert_eq!(parse(doubled, b"~?"), vec![cmd(Command::Help)]);
        assert_eq!(
            parse(doubled, b"ls\r~Bh"),
            vec![d(b"ls\r"), cmd(Command::Break), d(b"h")]
        );
        assert_eq!(
            parse(doubled, b"\n~.x"),
            vec![d(b"\n"), cmd(Command::Disconnect), d(b"x")]
        );
        // After a command the line start remains.
        assert_eq!(
            parse(doubled, b"~B~B"),
            vec![cmd(Command::Break), cmd(Command::Break)]
        );
    }
}

#[test]
fn mid_line_escape_doubled_escape_and_unknown_letters() {
    for doubled in BOTH {
        assert_eq!(parse(doubled, b"a~B~."), vec![d(b"a~B~.")]);
        assert_eq!(parse(doubled, b"~~B"), vec![d(b"~B")]);
        assert_eq!(parse(doubled, b"\r~x"), vec![d(b"\r~x")]);
        // An escape then a newline: both pass, and the next line starts fresh.
        assert_eq!(
            parse(doubled, b"\r~\r~B"),
            vec![d(b"\r~\r"), cmd(Command::Break)]
        );
    }
}

#[test]
fn an_escape_that_is_a_command_letter_typed_twice() {
    for esc in [b'.', b'B', b'?'] {
        let mut p = Parser::new(Some(esc), Doubled::Literal);
        assert_eq!(run(&mut p, &[&[esc], &[esc]]), vec![d(&[esc])]);
        let mut p = Parser::new(Some(esc), Doubled::CommandFirst);
        let want = cmd(Command::from_letter(esc).unwrap_or(Command::Help));
        assert_eq!(run(&mut p, &[&[esc, esc]]), vec![want]);
    }
    let mut p = Parser::new(Some(b'.'), Doubled::Literal);
    assert_eq!(run(&mut p, &[b".B"]), vec![cmd(Command::Break)]);
}

#[test]
fn other_escape_characters_and_none() {
    let mut p = Parser::new(Some(0x1d), Doubled::CommandFirst); // ^]
    assert_eq!(
        run(&mut p, &[b"~.\r\x1d."]),
        vec![d(b"~.\r"), cmd(Command::Disconnect)]
    );
    let mut p = Parser::new(None, Doubled::Literal);
    assert_eq!(run(&mut p, &[b"~.\r~B", CPR]), vec![d(b"~.\r~B\x1b[24;1R")]);
    assert!(p.feed(b"").is_empty());
    assert!(!p.at_line_start());
}

/// busybox ash asks for the cursor position at every prompt; the terminal's reply arrives
/// after the user's Enter and before the escape.
#[test]
fn busybox_prompt_reply_then_disconnect() {
    for doubled in BOTH {
        assert_eq!(
            parse(doubled, b"\r\x1b[24;1R~."),
            vec![d(b"\r\x1b[24;1R"), cmd(Command::Disconnect)]
        );
    }
}

#[test]
fn every_reply_at_line_start_keeps_it_for_every_command() {
    for doubled in BOTH {
        for reply in REPLIES {
            for command in [Command::Disconnect, Command::Break, Command::Help] {
                let input = cat(&[b"ls\r", reply, &[b'~', command.letter()], b"x"]);
                assert_eq!(
                    parse(doubled, &input),
                    vec![d(&cat(&[b"ls\r", reply])), cmd(command), d(b"x")],
                    "{}",
                    show(&input)
                );
            }
            // At the very start, and after a command.
            let input = cat(&[reply, b"~B", reply, b"~."]);
            assert_eq!(
                parse(doubled, &input),
                vec![
                    d(reply),
                    cmd(Command::Break),
                    d(reply),
                    cmd(Command::Disconnect)
                ]
            );
        }
        // Several in a row.
        let replies = REPLIES.concat();
        let input = cat(&[b"\r", &replies, b"~?"]);
        assert_eq!(
            parse(doubled, &input),
            vec![d(&cat(&[b"\r", &replies])), cmd(Command::Help)]
        );
    }
}

#[test]
fn keys_end_the_line_start() {
    for key in [
        &b"\x1b[A"[..],    // up arrow
        b"\x1b[1;5D",      // ctrl-left
        b"\x1b[5~",        // page up
        b"\x1bOA",         // up arrow, application mode
        b"\x1bx",          // alt-x
        b"\x1b",           // a lone escape key
        b"\x1b\x1b[24;1R", // escape key, then a reply mid-line
        b"\x1b[0n",        // a reply this parser does not list
    ] {
        let input = cat(&[b"\r", key, b"~."]);
        assert_eq!(
            parse(Doubled::Literal, &input),
            vec![d(&input)],
            "{}",
            show(&input)
        );
    }
}

#[test]
fn a_reply_mid_line_does_not_start_a_line() {
    let input = cat(&[b"ls", CPR, b"~."]);
    assert_eq!(parse(Doubled::Literal, &input), vec![d(&input)]);
}

#[test]
fn a_reply_between_the_escape_and_its_letter_cancels_the_escape() {
    // The bytes keep their order; the escape character is not held back across the reply.
    let input = cat(&[b"\r~", CPR, b"."]);
    assert_eq!(parse(Doubled::Literal, &input), vec![d(&input)]);
}

#[test]
fn a_newline_ends_an_unfinished_sequence_and_starts_a_line() {
    assert_eq!(
        parse(Doubled::Literal, b"\x1b[24\r~."),
        vec![d(b"\x1b[24\r"), cmd(Command::Disconnect)]
    );
}

#[test]
fn an_escape_character_inside_a_sequence_is_data() {
    // `~` ends the paste marker; the next one is the escape.
    assert_eq!(
        parse(Doubled::Literal, b"\x1b[200~~."),
        vec![d(b"\x1b[200~"), cmd(Command::Disconnect)]
    );
    assert_eq!(
        parse(Doubled::Literal, b"\x1b[~."),
        vec![d(b"\x1b[~.")],
        "`ESC [ ~` is not a reply"
    );
    // An escape character that is a parameter byte, or a control byte that cuts the sequence.
    let mut p = Parser::new(Some(b';'), Doubled::Literal);
    assert_eq!(
        run(&mut p, &[b"\x1b[24;1R;."]),
        vec![d(b"\x1b[24;1R"), cmd(Command::Disconnect)]
    );
    let mut p = Parser::new(Some(0x1d), Doubled::Literal);
    assert_eq!(run(&mut p, &[b"\x1b[2\x1d."]), vec![d(b"\x1b[2\x1d.")]);
}

#[test]
fn sequences_are_bounded() {
    // The longest recognised reply keeps the line start ...
    let fill = MAX_SEQUENCE - b"\x1b[1;R".len();
    let longest = cat(&[b"\x1b[1;", &b"0".repeat(fill), b"R"]);
    assert_eq!(longest.len(), MAX_SEQUENCE);
    assert_eq!(
        parse(Doubled::Literal, &cat(&[&longest, b"~."])),
        vec![d(&longest), cmd(Command::Disconnect)]
    );
    // ... one byte longer, it is a key: the rest is mid-line data.
    let longer = cat(&[b"\x1b[1;", &b"0".repeat(fill + 1), b"R~."]);
    assert_eq!(parse(Doubled::Literal, &longer), vec![d(&longer)]);
    // A megabyte of parameters is data, and the line start after its newline works.
    let huge = cat(&[b"\x1b[", &b"1;".repeat(1 << 19), b"\r~."]);
    assert_eq!(
        run(&mut Parser::new(Some(b'~'), Doubled::Literal), &[&huge]),
        vec![d(&huge[..huge.len() - 2]), cmd(Command::Disconnect)]
    );
}

#[test]
fn at_line_start_follows_the_parser() {
    let mut p = Parser::new(Some(b'~'), Doubled::Literal);
    let mut seen = Vec::new();
    for &b in b"x\r\x1b[24;1R~" {
        p.step(b, &mut Vec::new());
        seen.push(p.at_line_start());
    }
    // x, \r, then ESC [ 2 4 ; 1 (inside the reply), R, then the pending escape.
    let want = [
        false, true, false, false, false, false, false, false, true, false,
    ];
    assert_eq!(seen, want);
}
