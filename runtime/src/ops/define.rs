//! The macros that turn one declaration per op (and per enum-valued attribute) into the enum
//! and its names, attribute printing and attribute parsing.

/// Declares a fieldless enum whose variants have text names, with `ALL`, `name` and
/// `from_name`. `kind "prefix" "suffix"` makes it an op kind (its value names the op:
/// `prefix + name + suffix`); `word` makes it an attribute printed as its name.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident as $role:ident $($affix:literal)* {
            $( $(#[$vmeta:meta])* $variant:ident => $name:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize,
            serde::Deserialize,
        )]
        pub enum $ty {
            $( $(#[$vmeta])* $variant ),*
        }

        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            /// The name in IR text.
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),* }
            }

            /// The variant with this name.
            pub fn from_name(name: &str) -> Option<$ty> {
                match name { $($name => Some($ty::$variant),)* _ => None }
            }
        }

        $crate::ops::define::named_enum!(@attr $role $ty $($affix)* { $($variant => $name),* });
    };
    (@attr word $ty:ident { $($variant:ident => $name:literal),* }) => {
        impl $crate::ops::attr::OpAttr for $ty {
            type Key<'a> = &'a $ty;

            fn key(&self) -> &$ty {
                self
            }

            fn to_attr(&self) -> Option<$crate::ops::attr::AttrValue> {
                Some($crate::ops::attr::AttrValue::Ident(self.name()))
            }

            fn read(
                name: &'static str,
                _op: &str,
                r: &mut impl $crate::ops::attr::AttrReader,
            ) -> Self {
                $ty::ALL[r.word(name, &[$($name),*])]
            }
        }
    };
    (@attr kind $ty:ident $prefix:literal $suffix:literal { $($variant:ident => $name:literal),* }) => {
        impl $crate::ops::attr::OpAttr for $ty {
            type Key<'a> = &'a $ty;

            fn key(&self) -> &$ty {
                self
            }

            fn op_name(&self) -> Option<&'static str> {
                Some(match self { $($ty::$variant => concat!($prefix, $name, $suffix)),* })
            }

            fn names_op(op: &str) -> bool {
                matches!(op, $(concat!($prefix, $name, $suffix))|*)
            }

            fn to_attr(&self) -> Option<$crate::ops::attr::AttrValue> {
                None
            }

            fn read(
                _name: &'static str,
                op: &str,
                _r: &mut impl $crate::ops::attr::AttrReader,
            ) -> Self {
                match op {
                    $(concat!($prefix, $name, $suffix) => $ty::$variant,)*
                    _ => $ty::ALL[0],
                }
            }
        }
    };
}

/// Declares the op enum: each variant with its fields and its name in IR text, either a
/// literal or `kind` (a field whose type is a kind enum names the op). Generates the enum,
/// [`Op::name`](crate::ops::Op::name), [`Op::attrs`](crate::ops::Op::attrs),
/// [`Op::from_text`](crate::ops::Op::from_text), `PartialEq`/`Eq`/`Hash` (f64 fields by their
/// bits, see [`OpAttr::key`](crate::ops::attr::OpAttr::key)) `Op::variant` and `Op::VARIANTS`. Attributes are printed and
/// read in field order, each under its field's name.
macro_rules! define_ops {
    (
        $(#[$meta:meta])*
        pub enum $Op:ident {
            $(
                $(#[$vmeta:meta])*
                $V:ident $( ( $tk:ty ) )? $( { $( $f:ident : $t:ty ),* $(,)? } )? => $name:tt
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum $Op {
            $( $(#[$vmeta])* $V $( ( $tk ) )? $( { $( $f: $t ),* } )? ),*
        }

        impl PartialEq for $Op {
            #[allow(unused_variables)]
            fn eq(&self, other: &Self) -> bool {
                use $crate::ops::attr::OpAttr as _;
                match self {
                    $(
                        $Op::$V { $( 0: $crate::ops::define::first!(kind0 $tk), )? $( $( $f, )* )? .. } => {
                            let lhs = $crate::ops::define::cons!(
                                stringify!($V)
                                $(, $crate::ops::define::first!(kind0 $tk).key() )?
                                $( $(, $f.key() )* )?
                            );
                            let $Op::$V { $( 0: $crate::ops::define::first!(kind0 $tk), )? $( $( $f, )* )? .. } = other else {
                                return false;
                            };
                            lhs == $crate::ops::define::cons!(
                                stringify!($V)
                                $(, $crate::ops::define::first!(kind0 $tk).key() )?
                                $( $(, $f.key() )* )?
                            )
                        }
                    )*
                }
            }
        }

        impl Eq for $Op {}

        impl std::hash::Hash for $Op {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                use $crate::ops::attr::OpAttr as _;
                match self {
                    $(
                        $Op::$V { $( 0: $crate::ops::define::first!(kind0 $tk), )? $( $( $f, )* )? .. } => $crate::ops::define::cons!(
                            stringify!($V)
                            $(, $crate::ops::define::first!(kind0 $tk).key() )?
                            $( $(, $f.key() )* )?
                        )
                        .hash(state),
                    )*
                }
            }
        }

        impl $Op {
            /// Every variant's Rust name, in declaration order.
            pub const VARIANTS: &'static [&'static str] = &[$(stringify!($V)),*];

            /// The Rust name of the op's variant (`Unary`, `Reduce`, `Attention`, ...).
            pub fn variant(&self) -> &'static str {
                match self {
                    $( $Op::$V { .. } => stringify!($V), )*
                }
            }

            /// The op's name in IR text (`add`, `matmul`, `layer_norm`, ...).
            #[allow(unused_variables)]
            pub fn name(&self) -> &'static str {
                use $crate::ops::attr::OpAttr as _;
                match self {
                    $(
                        $Op::$V { $( 0: $crate::ops::define::first!(kind0 $tk), )? $( $( $f, )* )? .. } => {
                            $crate::ops::define::define_ops!(
                                @name $name; $( $crate::ops::define::first!(kind0 $tk) )? $( $( $f ),* )?
                            )
                        }
                    )*
                }
            }

            /// Every attribute, in print order (kinds are part of the name instead).
            pub fn attrs(&self) -> Vec<(&'static str, $crate::ops::attr::AttrValue)> {
                use $crate::ops::attr::OpAttr as _;
                match self {
                    $(
                        $Op::$V { $( $( $f, )* )? .. } => {
                            let attrs: Vec<(&'static str, Option<$crate::ops::attr::AttrValue>)> =
                                vec![$( $( (stringify!($f), $f.to_attr()) ),* )?];
                            attrs.into_iter().filter_map(|(k, v)| Some((k, v?))).collect()
                        }
                    )*
                }
            }

            /// The op called `op` with its attributes read from `r`; `None` for an unknown op
            /// name. Attributes are read in field order.
            pub fn from_text(op: &str, r: &mut impl $crate::ops::attr::AttrReader) -> Option<$Op> {
                use $crate::ops::attr::OpAttr;
                $(
                    if $crate::ops::define::define_ops!(
                        @matches op; $name; $( $tk )? $( $( $t ),* )?
                    ) {
                        return Some($Op::$V
                            $( ( <$tk as OpAttr>::read("", op, r) ) )?
                            $( { $( $f: <$t as OpAttr>::read(stringify!($f), op, r) ),* } )?
                        );
                    }
                )*
                None
            }
        }
    };
    (@name $name:literal; $($x:expr),*) => { $name };
    (@name kind; $($x:expr),*) => {
        None $( .or_else(|| $x.op_name()) )* .unwrap_or("")
    };
    (@matches $op:ident; $name:literal; $($t:ty),*) => { $op == $name };
    (@matches $op:ident; kind; $($t:ty),*) => {
        false $( || <$t as $crate::ops::attr::OpAttr>::names_op($op) )*
    };
}

/// The values as nested pairs `(a, (b, (c, ())))`: compared and hashed like the flat tuple
/// `(a, b, c)` (elements in order), with no limit on their number (std's tuple impls stop at 12).
macro_rules! cons {
    () => {
        ()
    };
    ($x:expr $(, $rest:expr)* $(,)?) => {
        ($x, $crate::ops::define::cons!($($rest),*))
    };
}

/// The first token tree (lets a repetition over a type emit something else).
macro_rules! first {
    ($x:tt $($rest:tt)*) => {
        $x
    };
}

pub(crate) use {cons, define_ops, first, named_enum};
